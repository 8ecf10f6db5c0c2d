/**
 * Job plane figures: enqueue one by one (beside isomorphic-git writing just the job commit and
 * its ref) and in one batch; trivial jobs end to end with two `gatos jobs work` processes
 (already started;
 * beside spawning the same commands with no queue at all); claim latency from the workers' own
 * `claimed` events.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs, { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import git from 'isomorphic-git';
import { initRepository, openRepository } from '../engine/git/repository.js';
import { enqueue } from '../engine/jobs/enqueue.js';
import { checkManifest } from '../engine/jobs/manifest.js';
import type { Ledger } from '../engine/ledger/context.js';
import { type BenchRow, median } from './row.js';

const GATOS = fileURLToPath(new URL('../cli/gatos.js', import.meta.url));

function ledgerAt(dir: string): Ledger {
  initRepository(dir);
  const repo = openRepository(dir);
  return { objects: repo.objects, refs: repo.refs, keyDir: join(dir, '.git', 'gatos', 'keys'), clock: () => Date.now() };
}

const trivial = (i: number, tag: string) => checkManifest({ command: ['/bin/true'], args: [`${tag}-${i}`], timeout: 30 });

async function isoGitJobs(dir: string, count: number): Promise<number> {
  const gitdir = join(dir, '.git');
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(JSON.stringify(trivial(i, 'iso'))) });
    const tree = await git.writeTree({ fs, gitdir, tree: [{ mode: '100644', path: 'job.yaml', oid: blob, type: 'blob' }] });
    const who = { name: 'b', email: 'b@b', timestamp: 1_700_000_000 + i, timezoneOffset: 0 };
    const commit = await git.writeCommit({ fs, gitdir, commit: { message: `job ${i}\n`, tree, parent: [], author: who, committer: who } });
    await git.writeRef({ fs, gitdir, ref: `refs/gatos/bench-iso/${i}/job`, value: commit });
  }
  return count / ((performance.now() - started) / 1000);
}

/**
 * Runs `count` trivial jobs through two idle, already started worker processes: from the first
 * enqueue (batches of 10) to the last `succeeded` event the workers report.
 */
async function endToEnd(dir: string, count: number): Promise<{ rate: number; claimMs: number[] }> {
  const ctx = ledgerAt(dir);
  const claimMs: number[] = [];
  let succeeded = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  for (const w of ['w0', 'w1']) spawnSync(process.execPath, [GATOS, '--repo', dir, 'key', 'new', '--actor', `agent:${w}`]);
  const workers = ['w0', 'w1'].map((w) => {
    const child = spawn(process.execPath, [GATOS, '--repo', dir, 'jobs', 'work', '--worker-id', w, '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const event = JSON.parse(line) as { event?: string; claim_ms?: number };
        if (event.event === 'claimed' && event.claim_ms !== undefined) claimMs.push(event.claim_ms);
        if (event.event === 'succeeded' && ++succeeded === count) allDone();
      }
    });
    return child;
  });
  await new Promise((r) => setTimeout(r, 1500));
  const started = performance.now();
  const manifests = Array.from({ length: count }, (_, i) => trivial(i, 'e2e'));
  for (let i = 0; i < count; i += 10) await enqueue(ctx, manifests.slice(i, i + 10));
  await done;
  const seconds = (performance.now() - started) / 1000;
  for (const child of workers) child.kill('SIGTERM');
  await Promise.all(workers.map((child) => new Promise((r) => child.on('exit', r))));
  return { rate: count / seconds, claimMs };
}

/** The same commands spawned two at a time with no queue: the floor for "trivial jobs". */
async function bareSpawns(count: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      await new Promise((r) => spawn('/bin/true', [], { stdio: 'ignore' }).on('exit', r));
    }
  };
  await Promise.all([lane(), lane()]);
  return count / ((performance.now() - started) / 1000);
}

export async function jobPlane(cacheDir: string, quick: boolean): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  // Fresh directories, removed only at the end: deleting files on this disk (mounted with
  // `discard`) slows the file creations that follow for a while, which would skew the figures.
  const dir = join(cacheDir, `job-plane-${process.pid}`);
  const e2eDir = join(cacheDir, `job-plane-e2e-${process.pid}`);
  const ctx = ledgerAt(dir);
  const single = quick ? 200 : 1000;
  let started = performance.now();
  for (let i = 0; i < single; i++) await enqueue(ctx, [trivial(i, 'one')]);
  const singleRate = single / ((performance.now() - started) / 1000);
  const isoRate = await isoGitJobs(dir, quick ? 50 : 200);
  rows.push({
    name: `jobs enqueue one by one (${single}, job + 2 messages each)`,
    value: Math.round(singleRate),
    unit: 'jobs/s',
    baseline: `isomorphic-git job commit + ref only ${Math.round(isoRate)}/s`,
    ratio: Number((singleRate / isoRate).toFixed(1)),
    target: '>= 500',
    met: singleRate >= 500,
  });
  const batch = quick ? 2000 : 10_000;
  started = performance.now();
  await enqueue(
    ctx,
    Array.from({ length: batch }, (_, i) => trivial(i, 'batch')),
  );
  const batchRate = batch / ((performance.now() - started) / 1000);
  rows.push({
    name: `jobs enqueue as one batch (${batch})`,
    value: Math.round(batchRate),
    unit: 'jobs/s',
    baseline: `one by one ${Math.round(singleRate)}/s`,
    ratio: Number((batchRate / singleRate).toFixed(1)),
    target: '>= 500',
    met: batchRate >= 500,
  });

  const count = quick ? 60 : 300;
  const e2e = await endToEnd(e2eDir, count);
  const bare = await bareSpawns(count);
  rows.push({
    name: `trivial jobs end to end, 2 worker processes (${count})`,
    value: Number(e2e.rate.toFixed(1)),
    unit: 'jobs/s',
    baseline: `spawning /bin/true 2 at a time, no queue ${Math.round(bare)}/s`,
    ratio: Number((e2e.rate / bare).toFixed(2)),
    target: '>= 30',
    met: e2e.rate >= 30,
  });
  const p50 = median(e2e.claimMs);
  rows.push({
    name: `claim latency p50 (${e2e.claimMs.length} claims)`,
    value: Number(p50.toFixed(2)),
    unit: 'ms',
    target: '<= 10',
    met: p50 <= 10,
  });
  rmSync(dir, { recursive: true, force: true });
  rmSync(e2eDir, { recursive: true, force: true });
  return rows;
}
