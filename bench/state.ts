/**
 * State plane figures: a full fold of a seeded ledger (100k events) in this thread and on the
 * compute pool, and an incremental fold of 1k new events on top of a large ledger (1M events;
 * 100k with --quick) beside the full fold of that same ledger.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository } from '../engine/git/repository.js';
import type { Ledger } from '../engine/ledger/context.js';
import { appendEvents } from '../engine/ledger/journal.js';
import { createKey } from '../engine/ledger/keys.js';
import { addActorKey, updateTrust } from '../engine/ledger/trust.js';
import { ComputePool } from '../engine/scheduler/pool.js';
import { fold } from '../engine/state/fold.js';
import { generateFixture } from '../fixtures/generate.js';
import type { BenchRow } from './row.js';

async function ledgerOf(dir: string, events: number): Promise<{ ctx: Ledger; gitDir: string }> {
  await generateFixture({ events, seed: 11, out: dir, namespaces: 1 });
  const repo = openRepository(dir);
  return { ctx: { objects: repo.objects, refs: repo.refs, keyDir: join(dir, 'bench-keys'), clock: () => Date.now() }, gitDir: repo.gitDir };
}

const seconds = (since: number) => (performance.now() - since) / 1000;

export async function statePlane(cacheDir: string, quick: boolean): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const smallDir = join(cacheDir, `state-100k-${process.pid}`);
  const small = await ledgerOf(smallDir, 100_000);
  const store = join(smallDir, 'private');
  let started = performance.now();
  await fold(small.ctx, 'ledger', { gitDir: small.gitDir, store, full: true });
  const inThread = seconds(started);
  const pool = new ComputePool();
  started = performance.now();
  await fold(small.ctx, 'ledger', { gitDir: small.gitDir, store, full: true, pool });
  const onPool = seconds(started);
  rows.push({
    name: `state: full fold of 100000 events, ${pool.threads} worker threads (pool start included)`,
    value: Number(onPool.toFixed(2)),
    unit: 's',
    baseline: `in this thread ${inThread.toFixed(2)} s`,
    ratio: Number((inThread / onPool).toFixed(2)),
    target: '<= 3 s',
    met: onPool <= 3,
  });

  const size = quick ? 100_000 : 1_000_000;
  const bigDir = quick ? smallDir : join(cacheDir, `state-1m-${process.pid}`);
  const big = quick ? small : await ledgerOf(bigDir, size);
  started = performance.now();
  await fold(big.ctx, 'ledger', { gitDir: big.gitDir, store, full: true, pool });
  const fullBig = seconds(started);
  const { publicKey } = createKey(big.ctx.keyDir, 'user:bench');
  updateTrust(big.ctx.objects, big.ctx.refs, big.ctx.clock, 'bench key', (graph) => addActorKey(graph, 'user:bench', publicKey));
  await appendEvents(
    big.ctx,
    Array.from({ length: 1000 }, (_, i) => ({ ns: 'ledger', type: 'bench.tick', actor: 'user:bench', payload: { i } })),
  );
  started = performance.now();
  const incremental = await fold(big.ctx, 'ledger', { gitDir: big.gitDir, store });
  const incrementalSeconds = seconds(started);
  rows.push({
    name: `state: incremental fold of 1000 new events on a ${size}-event ledger${incremental.incremental ? '' : ' (FELL BACK TO FULL)'}`,
    value: Number(incrementalSeconds.toFixed(3)),
    unit: 's',
    baseline: `full fold of the same ledger ${fullBig.toFixed(2)} s`,
    ratio: Number((fullBig / incrementalSeconds).toFixed(1)),
    target: '<= 1 s',
    met: incremental.incremental && incrementalSeconds <= 1,
  });
  await pool.close();
  rmSync(smallDir, { recursive: true, force: true });
  if (!quick) rmSync(bigDir, { recursive: true, force: true });
  return rows;
}
