import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { answering } from '../../cli/commands/daemon.js';
import { scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const GATOSD = fileURLToPath(new URL('../../cli/gatosd.js', import.meta.url));
const { repo: newRepo } = scratch();

function stdio(dir: string, lines: string[]): Array<Record<string, unknown>> {
  const result = spawnSync(process.execPath, [GATOS, 'daemon', '--stdio', '--repo', dir], {
    input: `${lines.join('\n')}\n`,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Resolves once a spawned daemon logs that it listens; rejects if it exits first. */
function listening(daemon: ReturnType<typeof spawn>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    daemon.stderr?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('"listening"')) resolve();
    });
    daemon.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
}

describe('gatos daemon (JSONL RPC)', () => {
  test('over stdio: publish, read, errors as frames, ping', () => {
    const dir = newRepo();
    const frames = stdio(dir, [
      JSON.stringify({
        method: 'messages.publish',
        id: 'p1',
        params: { topic: 'ci', envelope: { ns: 'ci', type: 'build', payload: { n: 1 } } },
      }),
      JSON.stringify({ type: 'messages.read', id: 'r1', topic: 'ci', limit: 10 }),
      '{broken',
      JSON.stringify({ method: 'messages.read', id: 'r2', params: { topic: 'ci', since_ulid: 'lower-case' } }),
      JSON.stringify({ method: 'messages.read', id: 'r3', params: { topic: 'ci', limit: 0 } }),
      JSON.stringify({ method: 'messages.read', id: 'r4', params: { topic: 'gone' } }),
      JSON.stringify({ method: 'frobnicate', id: 'x' }),
      JSON.stringify({ method: 'ping', id: 'k' }),
      JSON.stringify({ method: 'metrics', id: 'm' }),
    ]);
    assert.equal(frames[0]?.ok, true);
    assert.match(String(frames[0]?.commit_id), /^[0-9a-f]{40}$/);
    assert.equal((frames[1]?.messages as unknown[] | undefined)?.length, 1);
    assert.equal(frames[1]?.id, 'r1');
    assert.deepEqual([frames[2]?.code, frames[2]?.status], ['invalid_request', 400]);
    assert.deepEqual([frames[3]?.code, frames[3]?.status], ['invalid_ulid', 400]);
    assert.deepEqual([frames[4]?.code, frames[4]?.status], ['limit_out_of_range', 409]);
    assert.deepEqual([frames[5]?.code, frames[5]?.status], ['topic_not_found', 404]);
    assert.deepEqual([frames[6]?.code, frames[6]?.status], ['unknown_method', 404]);
    assert.deepEqual(frames[7], { kind: 'pong', id: 'k' });
    const metrics = String(frames[8]?.text);
    assert.match(metrics, /^gmp_publish_total\{topic="ci",result="ok"\} 1$/m);
    assert.match(metrics, /^gmp_head_age_seconds\{topic="ci"\} /m);
  });

  test('jobs over stdio: enqueue, ls, show, cancel, watch, and typed errors', () => {
    const dir = newRepo();
    const manifest = { command: ['/bin/echo'], args: ['hello'], timeout: 30 };
    const jobId = 'blake3:5c4f6b750d6930ffc8491f59dc7cffd5201b680755db0e9acff17d313df031d1';
    const frames = stdio(dir, [
      JSON.stringify({ method: 'jobs.enqueue', id: 'e1', params: { manifest } }),
      JSON.stringify({ method: 'jobs.enqueue', id: 'e2', params: { manifest: { command: ['/bin/echo'], timeout: -1 } } }),
      JSON.stringify({ method: 'jobs.ls', id: 'l1', params: { status: 'pending' } }),
      JSON.stringify({ method: 'jobs.show', id: 's1', params: { job_id: jobId } }),
      JSON.stringify({ method: 'jobs.cancel', id: 'c1', params: { job_id: jobId, reason: 'test' } }),
      JSON.stringify({ method: 'jobs.cancel', id: 'c2', params: { job_id: jobId } }),
      JSON.stringify({ method: 'jobs.show', id: 's2', params: { job_id: `blake3:${'0'.repeat(64)}` } }),
      JSON.stringify({ method: 'jobs.watch', id: 'w1' }),
    ]);
    const byId = (id: string) => frames.filter((f) => f.id === id);
    assert.deepEqual([byId('e1')[0]?.job_id, byId('e1')[0]?.created], [jobId, true]);
    assert.deepEqual([byId('e2')[0]?.code, byId('e2')[0]?.status], ['invalid_manifest', 400]);
    assert.deepEqual(
      ((byId('l1')[0]?.jobs ?? []) as Array<{ job_id: string }>).map((j) => j.job_id),
      [jobId],
    );
    assert.equal(byId('s1')[0]?.status, 'pending');
    assert.equal(byId('c1')[0]?.status, 'aborted');
    assert.deepEqual([byId('c2')[0]?.code, byId('c2')[0]?.status], ['job_finished', 409]);
    assert.deepEqual([byId('s2')[0]?.code, byId('s2')[0]?.status], ['job_not_found', 404]);
    assert.deepEqual(
      byId('w1').map((f) => f.event ?? (f.ack ? 'ack' : f.code)),
      ['ack', 'job.created', 'job.aborted'],
    );
  });

  test('over a unix socket (gatosd): subscribe sees messages another process publishes', async () => {
    const dir = newRepo();
    const socketPath = join(dir, '.git', 'gatos', 'test.sock');
    const daemon = spawn(process.execPath, [GATOSD, '--repo', dir, '--socket', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await listening(daemon);
      const socket = connect(socketPath);
      const frames: Array<Record<string, unknown>> = [];
      const waiters: Array<() => void> = [];
      createInterface({ input: socket }).on('line', (line) => {
        frames.push(JSON.parse(line) as Record<string, unknown>);
        for (const wake of waiters.splice(0)) wake();
      });
      const until = async (check: () => boolean) => {
        while (!check()) await new Promise<void>((resolve) => waiters.push(resolve));
      };
      socket.write(`${JSON.stringify({ method: 'messages.subscribe', id: 's1', params: { topic: 'jobs' } })}\n`);
      await until(() => frames.some((f) => f.ack === true));
      for (const n of [1, 2]) {
        const published = spawnSync(
          process.execPath,
          [GATOS, 'messages', 'publish', '--repo', dir, '--topic', 'jobs', '--type', 'job.created', '--payload', JSON.stringify({ n })],
          { encoding: 'utf8' },
        );
        assert.equal(published.status, 0, published.stderr);
      }
      await until(() => frames.filter((f) => f.type === 'bus.message').length >= 2);
      assert.deepEqual(
        frames.filter((f) => f.type === 'bus.message').map((f) => f.payload),
        [{ n: 1 }, { n: 2 }],
      );
      socket.end();
      // A second daemon on the same socket is refused while the first answers.
      const second = spawnSync(process.execPath, [GATOSD, '--repo', dir, '--socket', socketPath], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(second.status, 1, second.stderr);
      assert.match(second.stderr, /socket_in_use/);
      assert.equal(await answering(socketPath), true, 'the first daemon still serves');
    } finally {
      daemon.kill('SIGTERM');
    }
  });

  test('--socket never deletes what is not a stale socket', async () => {
    const dir = newRepo();
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'precious');
    const refused = spawnSync(process.execPath, [GATOSD, '--repo', dir, '--socket', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(refused.status, 2, refused.stderr);
    assert.equal(readFileSync(file, 'utf8'), 'precious');
    // A socket left by a process killed while it listened is replaced.
    const stale = join(dir, 'stale.sock');
    const holder = spawn(
      process.execPath,
      ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    assert.equal(lstatSync(stale).isSocket(), true);
    const daemon = spawn(process.execPath, [GATOSD, '--repo', dir, '--socket', stale], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await listening(daemon);
      assert.equal(await answering(stale), true);
    } finally {
      daemon.kill('SIGTERM');
    }
  });
});
