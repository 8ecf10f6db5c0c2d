import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateFixture } from '../../fixtures/generate.js';
import { runCaptured } from '../helpers/cli.js';
import { git, scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const GIT_GATOS = fileURLToPath(new URL('../../cli/git-gatos.js', import.meta.url));

function gatos(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [GATOS, ...args], { encoding: 'utf8', input: input ?? '', timeout: 120_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const scratchDirs = scratch();

describe('gatos CLI basics', () => {
  test('--version and help', () => {
    assert.match(gatos(['--version']).stdout, /^gatos \d+\.\d+\.\d+\n$/);
    const help = gatos(['help']);
    assert.equal(help.status, 0);
    for (const command of ['init', 'scan', 'canon']) assert.match(help.stdout, new RegExp(`\\b${command}\\b`));
    assert.match(gatos(['help', 'scan']).stdout, /--ref <prefix>/);
    assert.match(gatos(['scan', '--help']).stdout, /--batch-size/);
  });

  test('a reader of stdout that goes away ends the command quietly, as SIGPIPE ends git', async () => {
    const child = spawn(process.execPath, [GATOS, 'help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the child has started: its first write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 141, stderr);
    assert.equal(stderr, '');
  });

  test('every command the overview lists answers help with its summary and usage', async () => {
    const { main } = await import('../../cli/main.js');
    const run = async (argv: string[]) => {
      const { status, printed } = await runCaptured(main, argv);
      assert.equal(status, 0, argv.join(' '));
      return printed;
    };
    const listed = [...(await run(['help'])).matchAll(/^ {2}(\S+) {2,}(.+)$/gm)].filter(
      ([, name]) => name !== 'help' && !name?.startsWith('-'),
    );
    assert.equal(listed.length, 15);
    for (const [, name, summary] of listed) {
      const help = await run(['help', name as string]);
      assert.ok(help.startsWith(`${summary}\n\n`), name);
      assert.match(help, /usage: gatos /, name);
    }
  });

  test('usage errors exit 2 with a code; --json puts the error on stdout', () => {
    const unknown = gatos(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate".*\[usage\]/);
    const badFlag = gatos(['scan', '--nope', '--json']);
    assert.equal(badFlag.status, 2);
    assert.equal((JSON.parse(badFlag.stdout) as { error: { code: string } }).error.code, 'usage');
    assert.equal(gatos([]).status, 2);
  });

  test('--debug prints the stack trace with the TypeScript sources, also from the bundled CLI', () => {
    const dir = scratchDirs.dir();
    const result = gatos(['scan', '--repo', dir, '--ref', 'refs/gatos/', '--debug']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /\[not_a_repository\]\n.*\n\s+at .*\.ts:\d+:\d+\)/);
  });

  test('a path that is not a repository is an input error', () => {
    const dir = scratchDirs.dir();
    const result = gatos(['scan', '--repo', dir, '--ref', 'refs/gatos/', '--json']);
    assert.equal(result.status, 2);
    assert.equal((JSON.parse(result.stdout) as { error: { code: string } }).error.code, 'not_a_repository');
  });

  test('init creates a repository git accepts, and is idempotent', () => {
    const dir = join(scratchDirs.dir(), 'repo');
    const first = gatos(['init', '--repo', dir, '--json']);
    assert.equal(first.status, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { created: boolean }).created, true);
    assert.equal(git(dir, ['rev-parse', '--is-inside-work-tree']).trim(), 'true');
    git(dir, ['fsck', '--strict']);
    assert.equal((JSON.parse(gatos(['init', '--repo', dir, '--json']).stdout) as { created: boolean }).created, false);
  });
});

describe('gatos canon', () => {
  test('prints canonical bytes and content ids, from a file or stdin', () => {
    const dir = scratchDirs.dir();
    const file = join(dir, 'doc.json');
    writeFileSync(file, '{ "b": [1, 2.50, "é"], "a": {"y": null, "x": true} }');
    assert.equal(gatos(['canon', file]).stdout, '{"a":{"x":true,"y":null},"b":[1,2.5,"é"]}\n');
    assert.match(gatos(['canon', '--id'], '{"a":1}').stdout, /^blake3:[0-9a-f]{64}\n$/);
    // Same document, different spelling: same id.
    assert.equal(gatos(['canon', '--id'], '{ "a" : 1.0 }').stdout, gatos(['canon', '--id'], '{"a":1}').stdout);
  });

  test('duplicate keys and bad JSON are input errors', () => {
    const dup = gatos(['canon'], '{"a":1,"a":2}');
    assert.equal(dup.status, 2);
    assert.match(dup.stderr, /duplicate key "a".*\[invalid_json\]/);
    assert.equal(gatos(['canon'], '{').status, 2);
    assert.equal(gatos(['canon', '/no/such/file']).status, 2);
  });
});

describe('gatos scan', () => {
  let repo: string;
  before(async () => {
    repo = join(scratchDirs.dir(), 'fixture');
    await generateFixture({ events: 1500, seed: 3, out: repo, namespaces: 2, actors: 3, threads: 2 });
  });

  test('counts refs and commits the way git does', () => {
    const result = gatos(['scan', '--repo', repo, '--ref', 'refs/gatos/journal/', '--json', '--threads', '2', '--batch-size', '97']);
    assert.equal(result.status, 0, result.stderr);
    const counts = JSON.parse(result.stdout) as { refs: number; commits: number };
    assert.equal(counts.refs, git(repo, ['for-each-ref', 'refs/gatos/journal/']).trim().split('\n').length);
    assert.equal(counts.commits, Number(git(repo, ['rev-list', '--count', '--all']).trim()));
    assert.deepEqual(counts, { refs: 6, commits: 1500 });
  });

  test('a narrower prefix scans only its refs; human output names them', () => {
    const result = gatos(['scan', '--repo', repo, '--ref', 'refs/gatos/journal/ledger/']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^3 refs, 750 commits under refs\/gatos\/journal\/ledger\//);
  });

  test('global flags may come before the command', () => {
    const result = gatos(['--json', '--repo', repo, 'scan', '--ref', 'refs/gatos/journal/']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { refs: 6, commits: 1500 });
  });

  test('--ref is required and validated', () => {
    assert.equal(gatos(['scan', '--repo', repo]).status, 2);
    assert.equal(gatos(['scan', '--repo', repo, '--ref', 'heads/']).status, 2);
    assert.equal(gatos(['scan', '--repo', repo, '--ref', 'refs/', '--threads', '0']).status, 2);
    // Integers are decimal digits: what Number() would also read ("0x10", "1e3") is refused.
    for (const [flag, value] of [
      ['--threads', '0x2'],
      ['--threads', '2e0'],
      ['--batch-size', '1e3'],
      ['--batch-size', ' 97'],
    ] as const) {
      const result = gatos(['scan', '--repo', repo, '--ref', 'refs/', flag, value]);
      assert.equal(result.status, 2, `${flag} ${value}`);
      assert.match(result.stderr, /must be an integer.*\[invalid_argument\]/, `${flag} ${value}`);
    }
  });

  test('git-gatos is the same program (for `git gatos ...`)', () => {
    assert.ok(existsSync(GIT_GATOS));
    // git runs `git-gatos` from PATH; npm installs the bin there, here a directory stands in.
    const bin = scratchDirs.dir();
    symlinkSync(GIT_GATOS, join(bin, 'git-gatos'));
    const result = spawnSync('git', ['gatos', '--version'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    assert.match(result.stdout, /^gatos \d/, result.stderr);
  });
});
