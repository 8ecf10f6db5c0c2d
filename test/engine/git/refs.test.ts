import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GatosError } from '../../../engine/errors.js';
import { FileRefStore } from '../../../engine/git/file-ref-store.js';
import { MemoryRefStore } from '../../../engine/git/memory-ref-store.js';
import { ZERO_OID } from '../../../engine/git/oid.js';
import type { RefStore } from '../../../engine/git/ports.js';
import { assertRefComponent, isValidRefName } from '../../../engine/git/refname.js';
import { fsckStrict, git, gitEnv, scratch } from '../../helpers/git.js';

const { repo } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;

/** n distinct commits made by git, returned oldest first. */
function commits(dir: string, n: number): string[] {
  const tree = git(dir, ['mktree'], '').trim();
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(git(dir, ['commit-tree', tree, '-m', `c${i}`, ...(i > 0 ? ['-p', out[i - 1] as string] : [])]).trim());
  return out;
}

function forEachRef(dir: string, prefix = 'refs/'): Array<{ name: string; oid: string }> {
  const text = git(dir, ['for-each-ref', '--format=%(refname) %(objectname)', prefix]).trim();
  return text === '' ? [] : text.split('\n').map((line) => ({ name: line.split(' ')[0] as string, oid: line.split(' ')[1] as string }));
}

describe('ref names follow git check-ref-format', () => {
  const names = [
    'refs/heads/main',
    'refs/gatos/journal/ops/user/alice',
    'refs/a/b.c',
    'refs/a-b/_c',
    'refs/x/@',
    'refs/x/a@b',
    'refs/heads/ü',
    'HEAD',
    'refs',
    'refs/',
    'refs//a',
    'refs/a/',
    'refs/a.',
    'refs/a/.b',
    'refs/.a/b',
    'refs/a..b',
    'refs/a/b.lock',
    'refs/a.lock/b',
    'refs/a@{b',
    'refs/a b',
    'refs/a\tb',
    'refs/a~1',
    'refs/a^',
    'refs/a:b',
    'refs/a?',
    'refs/a*',
    'refs/a[b',
    'refs/a\\b',
    'refs/a\u007f',
    'refs/a\u0001',
    'refs/-a',
    'refs/a/-',
    'refs/a.b.lock.c',
    'refs/@',
    'refs/a/./b',
    'refs/a/../b',
    'refs/..',
    'refs/a.lo ck',
    'refs/lock',
    'refs/.lock',
    'refs/a.LOCK',
  ];
  const dir = repo();
  for (const name of names) {
    test(JSON.stringify(name), () => {
      let gitOk: boolean;
      if (name === 'HEAD') gitOk = true;
      else {
        try {
          git(dir, ['check-ref-format', name]);
          gitOk = true;
        } catch {
          gitOk = false;
        }
      }
      assert.equal(isValidRefName(name), gitOk);
    });
  }

  test('single components: the stricter allow-list', () => {
    assert.equal(assertRefComponent('alice', 'actor'), 'alice');
    for (const bad of ['', 'a/b', '-rf', '..', '.hidden', 'x.lock', 'a b', 'a:b', 'é'.repeat(200)]) {
      assert.throws(() => assertRefComponent(bad, 'actor'), isCode('invalid_ref_name'), JSON.stringify(bad));
    }
  });
});

describe('FileRefStore reads what git writes', () => {
  test('loose, packed, both, and symbolic refs agree with for-each-ref', () => {
    const dir = repo();
    const [a, b, c] = commits(dir, 3) as [string, string, string];
    git(dir, ['update-ref', 'refs/gatos/journal/ops/user/alice', a]);
    git(dir, ['update-ref', 'refs/gatos/journal/ops/user/bob', b]);
    git(dir, ['update-ref', 'refs/heads/main', a]);
    git(dir, ['pack-refs', '--all']);
    git(dir, ['update-ref', 'refs/gatos/journal/ops/user/alice', c]); // loose now shadows packed
    git(dir, ['update-ref', 'refs/gatos/messages/t/head', b]);
    const store = new FileRefStore(join(dir, '.git'));
    assert.deepEqual(store.list('refs/'), forEachRef(dir));
    assert.deepEqual(store.list('refs/gatos/journal/'), forEachRef(dir, 'refs/gatos/journal/'));
    assert.equal(store.resolve('refs/gatos/journal/ops/user/alice'), c);
    assert.equal(store.resolve('HEAD'), a);
    assert.equal(store.resolve('refs/heads/nope'), undefined);
  });

  test('a ref file with garbage is corrupt_ref', () => {
    const dir = repo();
    mkdirSync(join(dir, '.git/refs/gatos'), { recursive: true });
    writeFileSync(join(dir, '.git/refs/gatos/bad'), 'not an oid\n');
    assert.throws(() => new FileRefStore(join(dir, '.git')).resolve('refs/gatos/bad'), isCode('corrupt_ref'));
  });
});

describe('FileRefStore transactions', () => {
  test('create, update and delete; git sees each step and fsck stays clean', () => {
    const dir = repo();
    const [a, b] = commits(dir, 2) as [string, string];
    const store = new FileRefStore(join(dir, '.git'));
    store.transaction().create('refs/gatos/x/one', a).create('refs/gatos/x/two', b).commit();
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), [
      { name: 'refs/gatos/x/one', oid: a },
      { name: 'refs/gatos/x/two', oid: b },
    ]);
    store.transaction().update('refs/gatos/x/one', b, a).delete('refs/gatos/x/two', b).commit();
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), [{ name: 'refs/gatos/x/one', oid: b }]);
    fsckStrict(dir);
    assert.equal(existsSync(join(dir, '.git/refs/gatos/x/one.lock')), false);
  });

  test('deleting a packed ref rewrites packed-refs the way git reads it', () => {
    const dir = repo();
    const [a, b] = commits(dir, 2) as [string, string];
    git(dir, ['update-ref', 'refs/gatos/p/one', a]);
    git(dir, ['update-ref', 'refs/gatos/p/two', b]);
    git(dir, ['pack-refs', '--all']);
    git(dir, ['update-ref', 'refs/gatos/p/one', b]); // also loose
    new FileRefStore(join(dir, '.git')).transaction().delete('refs/gatos/p/one', b).commit();
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), [{ name: 'refs/gatos/p/two', oid: b }]);
    fsckStrict(dir);
  });

  test('one wrong expected value changes nothing (all-or-nothing)', () => {
    const dir = repo();
    const [a, b, c] = commits(dir, 3) as [string, string, string];
    const store = new FileRefStore(join(dir, '.git'));
    store.transaction().create('refs/gatos/t/a', a).create('refs/gatos/t/b', a).commit();
    const before = forEachRef(dir);
    assert.throws(
      () => store.transaction().update('refs/gatos/t/a', b, a).update('refs/gatos/t/b', c, b).create('refs/gatos/t/c', c).commit(),
      (err: unknown) =>
        isCode('HEAD_CONFLICT')(err) && (err as GatosError).data.ref === 'refs/gatos/t/b' && (err as GatosError).data.actual === a,
    );
    assert.throws(() => store.transaction().create('refs/gatos/t/a', c).commit(), isCode('HEAD_CONFLICT'));
    assert.deepEqual(forEachRef(dir), before);
    assert.equal(git(dir, ['status', '--porcelain', '--ignored']).includes('.lock'), false);
  });

  test('a lock held by someone else gives ref_locked and leaves no lock of ours', () => {
    const dir = repo();
    const [a] = commits(dir, 1) as [string];
    const store = new FileRefStore(join(dir, '.git'));
    const foreign = join(dir, '.git/refs/gatos/l/b.lock');
    mkdirSync(dirname(foreign), { recursive: true });
    writeFileSync(foreign, '');
    assert.throws(() => store.transaction().create('refs/gatos/l/a', a).create('refs/gatos/l/b', a).commit(), isCode('ref_locked'));
    assert.equal(existsSync(join(dir, '.git/refs/gatos/l/a.lock')), false);
    assert.equal(existsSync(foreign), true, 'never delete a lock we did not take');
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), []);
  });

  test('directory/file conflicts are refused', () => {
    const dir = repo();
    const [a] = commits(dir, 1) as [string];
    const store = new FileRefStore(join(dir, '.git'));
    store.transaction().create('refs/gatos/d/x', a).commit();
    assert.throws(() => store.transaction().create('refs/gatos/d', a).commit(), isCode('ref_dir_conflict'));
    assert.throws(() => store.transaction().create('refs/gatos/d/x/y', a).commit(), isCode('ref_dir_conflict'));
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), [{ name: 'refs/gatos/d/x', oid: a }]);
  });

  test('bad input is refused before anything is written', () => {
    const dir = repo();
    const store = new FileRefStore(join(dir, '.git'));
    assert.throws(() => store.transaction().create('refs/gatos/a..b', 'a'.repeat(40)), isCode('invalid_ref_name'));
    assert.throws(() => store.transaction().create('refs/gatos/ok', 'xyz'), isCode('invalid_oid'));
    assert.throws(() => store.transaction().create('refs/gatos/ok', ZERO_OID), isCode('invalid_oid'));
    assert.deepEqual(forEachRef(dir), []);
  });
});

const HELPER = fileURLToPath(new URL('./helpers/ref-race.js', import.meta.url));

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: gitEnv });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}

describe('concurrency with real processes', () => {
  test('N processes creating the same ref: exactly one wins', async () => {
    const dir = repo();
    const [a] = commits(dir, 1) as [string];
    const results = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, [HELPER, 'create', join(dir, '.git'), 'refs/gatos/race/one', a])),
    );
    const outcomes = results.map((r) => r.trim());
    assert.equal(outcomes.filter((o) => o === 'won').length, 1, outcomes.join(','));
    for (const o of outcomes) assert.ok(['won', 'HEAD_CONFLICT', 'ref_locked'].includes(o), o);
    assert.deepEqual(forEachRef(dir, 'refs/gatos/'), [{ name: 'refs/gatos/race/one', oid: a }]);
  });

  test('our transactions and git update-ref racing on one ref lose no update', async () => {
    const dir = repo();
    const [root] = commits(dir, 1) as [string];
    const ref = 'refs/gatos/race/counter';
    git(dir, ['update-ref', ref, root]);
    const perWriter = 15;
    // A shell loop doing the same read-modify-write with stock git, retrying when its CAS fails.
    const gitLoop = `
      tree=$(git mktree </dev/null); n=0
      while [ $n -lt ${perWriter} ]; do
        old=$(git rev-parse ${ref})
        new=$(git commit-tree "$tree" -p "$old" -m "git $$ $n")
        if git update-ref ${ref} "$new" "$old" 2>/dev/null; then n=$((n+1)); fi
      done`;
    const writers = [
      run(process.execPath, [HELPER, 'increment', join(dir, '.git'), ref, String(perWriter)]),
      run(process.execPath, [HELPER, 'increment', join(dir, '.git'), ref, String(perWriter)]),
      run('sh', ['-c', `cd ${JSON.stringify(dir)} && ${gitLoop}`]),
      run('sh', ['-c', `cd ${JSON.stringify(dir)} && ${gitLoop}`]),
    ];
    await Promise.all(writers);
    const length = Number(git(dir, ['rev-list', '--count', ref]).trim());
    assert.equal(length, 1 + 4 * perWriter, 'every successful update is on the chain');
    fsckStrict(dir);
  });
});

describe('MemoryRefStore has the same semantics', () => {
  test('random transactions agree with a simple model and with FileRefStore', () => {
    const dir = repo();
    const oids = commits(dir, 4);
    const stores: RefStore[] = [new MemoryRefStore(), new FileRefStore(join(dir, '.git'))];
    const names = ['refs/gatos/m/a', 'refs/gatos/m/b', 'refs/gatos/m/c'];
    let seed = 3;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let step = 0; step < 150; step++) {
      const ops = Array.from({ length: 1 + rand(2) }, () => ({
        name: names[rand(3)] as string,
        kind: rand(3),
        oid: oids[rand(4)] as string,
        guess: rand(2),
        other: oids[rand(4)] as string,
      }));
      if (new Set(ops.map((o) => o.name)).size !== ops.length) continue;
      const outcomes = stores.map((store) => {
        const tx = store.transaction();
        for (const op of ops) {
          const current = store.resolve(op.name) ?? ZERO_OID;
          const expected = op.guess ? current : op.other;
          if (op.kind === 0) tx.create(op.name, op.oid);
          else if (op.kind === 1) tx.update(op.name, op.oid, expected);
          else tx.delete(op.name, expected);
        }
        try {
          tx.commit();
          return 'ok';
        } catch (err) {
          return (err as GatosError).code;
        }
      });
      assert.deepEqual(stores[0]?.list('refs/'), stores[1]?.list('refs/'), `step ${step}: ${outcomes.join(' vs ')}`);
    }
  });
});
