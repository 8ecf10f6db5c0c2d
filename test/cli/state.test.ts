import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fsckStrict, git, scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const { repo: newRepo, dir: newDir } = scratch();

function gatos(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [GATOS, '--repo', dir, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('gatos fold, state, pointer', () => {
  test('fold any journal, show a node, verify, bisect with a shell predicate', () => {
    const dir = newRepo();
    assert.equal(gatos(dir, ['key', 'new', '--actor', 'user:alice']).status, 0);
    const commits: string[] = [];
    for (let n = 1; n <= 6; n++) {
      const added = gatos(dir, [
        'event',
        'add',
        '--ns',
        'ops',
        '--actor',
        'user:alice',
        '--type',
        'temp.read',
        '--payload',
        JSON.stringify({ celsius: n * 10 }),
        '--json',
      ]);
      assert.equal(added.status, 0, added.stderr);
      commits.push((JSON.parse(added.stdout) as { commit: string }).commit);
      if (n === 2) assert.equal(gatos(dir, ['fold', '--ns', 'ops']).status, 0);
    }
    const good = git(dir, ['rev-parse', 'refs/gatos/state/ops']).trim();
    const folded = JSON.parse(gatos(dir, ['fold', '--ns', 'ops', '--json']).stdout) as {
      commit: string;
      incremental: boolean;
      events: number;
    };
    assert.deepEqual([folded.incremental, folded.events], [true, 6]);
    assert.equal(gatos(dir, ['state', 'show', 'ops', 'temp.read']).stdout.trim(), '{"celsius":60}');
    const proof = JSON.parse(gatos(dir, ['state', 'show', 'ops', 'temp.read', '--proof', '--json']).stdout) as { proof: { leaf: string } };
    assert.match(proof.proof.leaf, /^[0-9a-f]{64}$/);
    assert.equal(gatos(dir, ['fold', 'verify', 'ops']).status, 0);
    // The reading goes bad once it passes 35 degrees: the 4th event.
    const predicate = `node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.exit(JSON.parse(s)["temp.read"].celsius>35?1:0))'`;
    const bisect = gatos(dir, ['state', 'bisect', 'ops', '--good', good, '--bad', folded.commit, '--run', predicate, '--json']);
    assert.equal(bisect.status, 0, bisect.stderr);
    assert.equal((JSON.parse(bisect.stdout) as { first_bad: { commit: string } }).first_bad.commit, commits[3]);
    fsckStrict(dir);
  });

  test('a committed spec applies without --spec; bad specs exit 2 and change nothing', () => {
    const dir = newRepo();
    assert.equal(gatos(dir, ['key', 'new', '--actor', 'user:alice']).status, 0);
    assert.equal(gatos(dir, ['event', 'add', '--ns', 'ops', '--actor', 'user:alice', '--type', 'tick', '--payload', '{}']).status, 0);
    const spec = join(dir, 'spec.yaml');
    writeFileSync(spec, 'version: 1\nrules:\n  - on: tick\n    ops: [{ op: increment, path: ticks }]\n');
    assert.equal(gatos(dir, ['fold', '--ns', 'ops', '--spec', spec, '--save-spec']).status, 0);
    assert.equal(gatos(dir, ['event', 'add', '--ns', 'ops', '--actor', 'user:alice', '--type', 'tick', '--payload', '{}']).status, 0);
    assert.equal(gatos(dir, ['fold', '--ns', 'ops']).status, 0);
    assert.equal(gatos(dir, ['state', 'show', 'ops', 'ticks']).stdout.trim(), '2');
    const before = git(dir, ['for-each-ref']);
    writeFileSync(spec, 'version: 1\nrules:\n  - on: tick\n    ops: [{ op: explode, path: ticks }]\n');
    const bad = gatos(dir, ['fold', '--ns', 'ops', '--spec', spec]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /invalid_fold_spec/);
    assert.equal(git(dir, ['for-each-ref']), before);
  });

  test('pointer put stores bytes outside Git; resolve checks the digest', () => {
    const dir = newRepo();
    const store = newDir();
    const secret = join(dir, 'secret.txt');
    writeFileSync(secret, 'the launch codes');
    const put = gatos(dir, ['pointer', 'put', secret, '--location', `file://${store}`, '--capability', 'age://recipient1', '--json']);
    assert.equal(put.status, 0, put.stderr);
    const pointer = JSON.parse(put.stdout) as { digest: string; size: number; location: string };
    assert.equal(pointer.size, 1024);
    assert.equal(git(dir, ['count-objects']).startsWith('0 objects'), true, 'nothing entered the object store');
    const resolved = gatos(dir, ['pointer', 'resolve', pointer.digest, '--location', pointer.location]);
    assert.equal(resolved.stdout, 'the launch codes');
    const outFile = join(dir, 'resolved.txt');
    const toFile = gatos(dir, ['pointer', 'resolve', pointer.digest, '--location', pointer.location, '--out', outFile]);
    assert.equal(toFile.status, 0, toFile.stderr);
    assert.equal(readFileSync(outFile, 'utf8'), 'the launch codes');
    assert.equal(statSync(outFile).mode & 0o777, 0o600, 'private plaintext readable by its owner only');
    writeFileSync(fileURLToPath(pointer.location), 'forged');
    const refused = gatos(dir, ['pointer', 'resolve', pointer.digest, '--location', pointer.location]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /pointer_digest_mismatch/);
  });
});
