import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { git, scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const { repo: newRepo } = scratch();

function gatos(dir: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [GATOS, '--repo', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('gatos messages', () => {
  test('publish one and a file, read a page with a checkpoint, list topics', () => {
    const dir = newRepo();
    const one = gatos(dir, ['messages', 'publish', '--topic', 'ci/builds', '--type', 'build.started', '--payload', '{"n":0}', '--json']);
    assert.equal(one.status, 0, one.stderr);
    assert.deepEqual(Object.keys(JSON.parse(one.stdout) as object).sort(), ['commit', 'content_id', 'ulid']);
    const file = join(dir, 'batch.jsonl');
    writeFileSync(
      file,
      Array.from({ length: 20 }, (_, i) => JSON.stringify({ ns: 'ci', type: 'build.finished', payload: { i } })).join('\n'),
    );
    assert.equal(gatos(dir, ['bus', 'publish', '--topic', 'ci/builds', '--file', file]).status, 0);
    const page = JSON.parse(
      gatos(dir, ['messages', 'read', '--topic', 'ci/builds', '--limit', '5', '--checkpoint-group', 'workers', '--json']).stdout,
    ) as {
      messages: Array<{ ulid: string }>;
      next_since: string;
      checkpoint_hint: { group: string };
    };
    assert.equal(page.messages.length, 5);
    assert.equal(page.checkpoint_hint.group, 'workers');
    const rest = JSON.parse(
      gatos(dir, ['messages', 'read', '--topic', 'ci/builds', '--since', page.next_since, '--limit', '600', '--json']).stdout,
    ) as { messages: unknown[] };
    assert.equal(rest.messages.length, 16);
    assert.match(git(dir, ['cat-file', '-p', 'refs/gatos/consumers/workers/ci/builds']), new RegExp(`"ulid":"${page.next_since}"`));
    assert.deepEqual(JSON.parse(gatos(dir, ['messages', 'topics', '--json']).stdout), { topics: ['ci/builds'] });
    git(dir, ['fsck', '--strict']);
  });

  test('a large file is published through the worker pool: every line once, in order, fsck clean', () => {
    const dir = newRepo();
    const file = join(dir, 'large.jsonl');
    const count = 3000;
    writeFileSync(file, Array.from({ length: count }, (_, i) => JSON.stringify({ ns: 'ci', type: 'tick', payload: { i } })).join('\n'));
    const published = gatos(dir, ['messages', 'publish', '--topic', 'bulk', '--file', file, '--threads', '2', '--json']);
    assert.equal(published.status, 0, published.stderr);
    assert.equal((JSON.parse(published.stdout) as { published: number }).published, count);
    const seen: number[] = [];
    for (let since: string | undefined; seen.length < count; ) {
      const page = JSON.parse(
        gatos(dir, ['messages', 'read', '--topic', 'bulk', '--limit', '1000', ...(since ? ['--since', since] : []), '--json']).stdout,
      ) as { messages: Array<{ canonical_json: string }>; next_since: string };
      assert.ok(page.messages.length > 0);
      for (const m of page.messages)
        seen.push((JSON.parse(Buffer.from(m.canonical_json, 'base64').toString()) as { payload: { i: number } }).payload.i);
      since = page.next_since;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: count }, (_, i) => i),
    );
    assert.equal(git(dir, ['rev-list', '--count', 'refs/gatos/messages/bulk/head']).trim(), String(count));
    git(dir, ['fsck', '--strict']);
  });

  test('errors: unknown topic 2, bad limit 2, backwards checkpoint 1', () => {
    const dir = newRepo();
    assert.equal(gatos(dir, ['messages', 'read', '--topic', 'missing']).status, 2);
    assert.equal(gatos(dir, ['messages', 'publish', '--topic', 'a', '--type', 't', '--payload', '{}']).status, 0);
    assert.equal(gatos(dir, ['messages', 'read', '--topic', 'a', '--limit', '0']).status, 2);
    assert.equal(gatos(dir, ['messages', 'checkpoint', '--topic', 'a', '--group', 'g', '--ulid', '01KB0000000000000000000009']).status, 0);
    assert.equal(gatos(dir, ['messages', 'checkpoint', '--topic', 'a', '--group', 'g', '--ulid', '01KB0000000000000000000001']).status, 1);
    assert.equal(gatos(dir, ['messages', 'publish', '--topic', 'a/head', '--type', 't', '--payload', '{}']).status, 2);
    // A file that cannot be read is named, as an input error (it was an internal one).
    const missing = gatos(dir, ['messages', 'publish', '--topic', 'a', '--file', join(dir, 'none.jsonl')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read .*none\.jsonl.*\[invalid_argument\]/);
    const attachment = gatos(dir, [
      'messages',
      'publish',
      '--topic',
      'a',
      '--type',
      't',
      '--payload',
      '{}',
      '--attach',
      `x=${join(dir, 'none')}`,
    ]);
    assert.match(attachment.stderr, /cannot read attachment .*none.*\[invalid_argument\]/);
  });

  test('tail follows new messages until SIGTERM', async () => {
    const dir = newRepo();
    assert.equal(gatos(dir, ['messages', 'publish', '--topic', 'live', '--type', 't', '--payload', '{"n":0}']).status, 0);
    const tail = spawn(process.execPath, [GATOS, '--repo', dir, 'messages', 'tail', '--topic', 'live']);
    let out = '';
    const seen = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (out.trim().split('\n').filter(Boolean).length >= n) resolve();
          else setTimeout(check, 20);
        };
        check();
      });
    tail.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await seen(1);
    assert.equal(gatos(dir, ['messages', 'publish', '--topic', 'live', '--type', 't', '--payload', '{"n":1}']).status, 0);
    await seen(2);
    const exited = new Promise<number | null>((resolve) => tail.on('close', resolve));
    tail.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(out, /"n":0/);
    assert.match(out, /"n":1/);
  });
});
