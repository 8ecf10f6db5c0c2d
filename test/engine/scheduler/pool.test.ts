import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3Hex, blake3Ready } from '../../../engine/codec/blake3.js';
import { canonicalize } from '../../../engine/codec/canonical-json.js';
import { GatosError } from '../../../engine/errors.js';
import { ComputePool, type PoolProgress } from '../../../engine/scheduler/pool.js';
import type { HashTask } from '../../../engine/scheduler/tasks.js';
import { removeDir, tempDir } from '../../helpers/git.js';

function layout(items: Buffer[]): Pick<HashTask, 'data' | 'offsets'> {
  const offsets = new Uint32Array(items.length + 1);
  items.forEach((item, i) => {
    offsets[i + 1] = (offsets[i] as number) + item.length;
  });
  return { data: new Uint8Array(Buffer.concat(items)), offsets };
}

describe('ComputePool', () => {
  test('the worker entry hands piscina a handler to await, so task code loads before a worker waits for tasks', async () => {
    // piscina awaits a promised handler before blocking the thread in Atomics.wait; a handler
    // given at once would leave the import of the task code stalled until the first task.
    const entry = createRequire(import.meta.url)('../../../workers/task-worker-entry.cjs') as { __esModule?: boolean; default?: unknown };
    assert.equal(entry.__esModule, true);
    assert.ok(entry.default instanceof Promise);
    assert.equal(typeof (await entry.default), 'function');
  });

  const progress: PoolProgress[] = [];
  let pool: ComputePool;
  before(async () => {
    await blake3Ready();
    pool = new ComputePool({ threads: 2, maxInFlight: 3, onProgress: (p) => progress.push(p) });
  });
  after(() => pool.close());

  test('hash tasks match direct hashing, and input buffers can be moved', async () => {
    const items = Array.from({ length: 500 }, (_, i) => Buffer.from(`item-${i}-${'z'.repeat(i % 50)}`));
    const { data, offsets } = layout(items);
    const sha = await pool.run({ kind: 'hash', algo: 'sha1', data: data.slice(), offsets: offsets.slice() });
    const b3 = await pool.run({ kind: 'hash', algo: 'blake3', data, offsets }, [data.buffer as ArrayBuffer]);
    assert.equal(data.byteLength, 0, 'the moved input buffer is detached');
    items.forEach((item, i) => {
      assert.equal(Buffer.from(sha.digests.subarray(i * 20, i * 20 + 20)).toString('hex'), createHash('sha1').update(item).digest('hex'));
      assert.equal(Buffer.from(b3.digests.subarray(i * 32, i * 32 + 32)).toString('hex'), blake3Hex(item));
    });
  });

  test('canonicalize tasks match the codec', async () => {
    const docs = [{ b: 1, a: [true, null, 'é'] }, { z: { y: 1e21, x: 0.1 } }];
    const result = await pool.run({ kind: 'canonicalize', documents: docs.map((d) => JSON.stringify(d)) });
    docs.forEach((doc, i) => {
      const bytes = Buffer.from(result.canonical.subarray(result.offsets[i], result.offsets[i + 1]));
      assert.equal(bytes.toString('utf8'), canonicalize(doc));
      assert.match(result.ids[i] as string, /^blake3:[0-9a-f]{64}$/);
    });
  });

  test('a task error arrives as a typed GatosError with its code', async () => {
    await assert.rejects(
      pool.run({ kind: 'canonicalize', documents: ['{"a":'] }),
      (err: unknown) => err instanceof GatosError && err.code === 'invalid_json',
    );
    const missing = tempDir();
    removeDir(missing);
    await assert.rejects(
      pool.run({ kind: 'scan', gitDir: missing, ref: 'refs/x', frontier: [], limit: 1 }),
      (err: unknown) => err instanceof GatosError && err.code === 'not_a_repository',
    );
  });

  test('in-flight work never exceeds the bound, and progress is reported', async () => {
    progress.length = 0;
    const tasks = Array.from({ length: 12 }, (_, i) => pool.run({ kind: 'canonicalize', documents: [JSON.stringify({ i })] }));
    await Promise.all(tasks);
    assert.ok(progress.length >= 24, `progress events: ${progress.length}`);
    assert.ok(Math.max(...progress.map((p) => p.inFlight)) <= 3);
    const last = progress[progress.length - 1] as PoolProgress;
    assert.equal(last.inFlight, 0);
    assert.equal(last.completed - last.submitted, 0);
  });
});

describe('ComputePool shutdown', () => {
  test('a process that closes its pool exits on its own', () => {
    const script = fileURLToPath(new URL('./helpers/pool-exit.js', import.meta.url));
    // The timeout only guards against a hang; it is not a speed check. A signal is also what a
    // worker loading its code used to cause now and then (SIGABRT: workers/README.md).
    const result = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.signal, null, 'the process hung and was killed');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'closed');
  });

  test('run after close is refused with pool_closed', async () => {
    const pool = new ComputePool({ threads: 1 });
    await pool.close();
    await assert.rejects(
      pool.run({ kind: 'canonicalize', documents: ['1'] }),
      (err: unknown) => err instanceof GatosError && err.code === 'pool_closed',
    );
  });

  test('piscina is loaded by the first pool, not by importing the module (one-thread commands skip it)', () => {
    const pool = fileURLToPath(new URL('../../../engine/scheduler/pool.js', import.meta.url));
    const script = [
      "import { createRequire } from 'node:module';",
      `const { ComputePool, parseThreads } = await import(${JSON.stringify(pool)});`,
      'const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes("/piscina/"));',
      'parseThreads("2");',
      'const before = loaded();',
      'const computePool = new ComputePool({ threads: 1 });',
      'const after = loaded();',
      'await computePool.close();',
      'console.log(JSON.stringify({ before, after }));',
    ].join('\n');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { before: false, after: true });
  });

  test('--threads values are validated', () => {
    assert.throws(
      () => new ComputePool({ threads: 0 }),
      (err: unknown) => err instanceof GatosError && err.code === 'invalid_argument',
    );
  });
});
