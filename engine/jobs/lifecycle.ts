/**
 * Transitions of a job's `claim` chain (decision 0007). Each one writes a commit whose parent is
 * the current tip (the job commit for the first) and moves `refs/gatos/jobs/<hex>/claim` by
 * compare-and-swap, together with the worker's own `claims/<worker>` ref and, for the final
 * result, the zero-expected creation of `result`. One ref serializes the job, so a claim is
 * exclusive however many workers race, a cancelled job refuses later claims and results, and a
 * worker whose lease was taken over cannot write a result.
 */
import type { KeyObject } from 'node:crypto';
import { blake3Bytes } from '../codec/blake3.js';
import { GatosError, hasCode } from '../errors.js';
import { serializeCommit } from '../git/object-codec.js';
import { hashObject } from '../git/oid.js';
import type { GitObject, Oid } from '../git/ports.js';
import { type Trailer, withTrailers } from '../git/trailers.js';
import type { Ledger } from '../ledger/context.js';
import type { Bus } from '../messages/publish.js';
import { JOB_PLANE_IDENTITY } from './enqueue.js';
import { announce } from './events.js';
import { type ChainEntry, type ChainState, chainTip, type Job, jobRefs, statusAt } from './store.js';

export interface WorkerIdentity {
  /** The worker id: one ref component, also the actor `agent:<name>` whose key signs. */
  name: string;
  key: KeyObject;
  /** `ed25519:<hex>` of `key`. */
  publicKey: string;
}

/** A live claim held by this process. `tip` follows every heartbeat. */
export interface Lease {
  job: Job;
  worker: WorkerIdentity;
  attempt: number;
  tip: Oid;
  leaseMs: number;
  expires: number;
}

const MAX_BACKOFF_MS = 600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Delay before retry `attempt + 1`: doubling from the job's base, capped, with ±20% jitter derived from the job id. */
export function retryDelayMs(job: Job, attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, job.backoffMs * 2 ** (attempt - 1));
  const jitter = ((blake3Bytes(`${job.id}:${attempt}`)[0] as number) / 255) * 0.4 - 0.2;
  return Math.round(base * (1 + jitter));
}

function chainCommit(
  ctx: Bus,
  job: Job,
  parent: Oid,
  tree: Oid,
  state: ChainState,
  attempt: number,
  trailers: Trailer[],
  author?: string,
): { object: GitObject; oid: Oid } {
  const now = ctx.clock();
  const committer = { ...JOB_PLANE_IDENTITY, timestamp: Math.floor(now / 1000) };
  const who = author ? { ...committer, name: author, email: `${author}@jobs.gatos.local` } : committer;
  const message = withTrailers(`${state} ${job.manifest.ulid ?? job.hex.slice(0, 12)}`, [
    { key: 'Job-Id', value: job.id },
    { key: 'Job-State', value: state },
    { key: 'Attempt', value: String(attempt) },
    ...trailers,
  ]);
  const body = serializeCommit({ tree, parents: [parent], author: who, committer, message });
  return { object: { type: 'commit', body }, oid: hashObject('commit', body) };
}

function workerTrailers(worker: WorkerIdentity): Trailer[] {
  return [
    { key: 'Worker-Name', value: worker.name },
    { key: 'Worker-Id', value: worker.publicKey },
  ];
}

/** A `claimed` or `running` commit: the worker's lease until `expires`. */
function leaseCommit(
  ctx: Bus,
  job: Job,
  parent: Oid,
  state: 'claimed' | 'running',
  attempt: number,
  worker: WorkerIdentity,
  expires: number,
) {
  return chainCommit(
    ctx,
    job,
    parent,
    job.tree,
    state,
    attempt,
    [...workerTrailers(worker), { key: 'Lease-Expires', value: iso(expires) }],
    worker.name,
  );
}

/** Moves `claim` (and the worker's ref) from `from` to `to`; a lost race becomes `code`. */
function moveChain(
  ctx: Bus,
  job: Job,
  from: Oid | undefined,
  to: Oid,
  worker: string | undefined,
  code: string,
  createResult = false,
): void {
  const transaction = ctx.refs.transaction();
  if (from) transaction.update(jobRefs.claim(job.hex), to, from);
  else transaction.create(jobRefs.claim(job.hex), to);
  if (worker) {
    const mine = ctx.refs.resolve(jobRefs.workerClaim(job.hex, worker));
    if (mine) transaction.update(jobRefs.workerClaim(job.hex, worker), to, mine);
    else transaction.create(jobRefs.workerClaim(job.hex, worker), to);
  }
  if (createResult) transaction.create(jobRefs.result(job.hex), to);
  try {
    transaction.commit();
  } catch (err) {
    if (hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked'))
      throw new GatosError(code, `job ${job.id} moved on (${code.replace('_', ' ')})`, { job_id: job.id }, { cause: err });
    throw err;
  }
}

export type ClaimOutcome =
  | { kind: 'claimed'; lease: Lease; previous?: ChainEntry }
  /** A stale claim used up the last attempt: the job is now failed (`reason: lease_expired`). */
  | { kind: 'expired'; commit: Oid; attempt: number };

/**
 * Claims a job for `worker` if it is claimable now (never claimed, retry due, released, or a
 * lease that ran out). Throws `claim_conflict` when it is not, or when another worker won.
 */
export function claimJob(ctx: Ledger, job: Job, worker: WorkerIdentity, leaseMs: number): ClaimOutcome {
  const tip = chainTip(ctx.objects, ctx.refs, job.hex);
  const now = ctx.clock();
  const { status, claimable } = statusAt(tip, now);
  if (!claimable) throw new GatosError('claim_conflict', `job ${job.id} is ${status}, not claimable`, { job_id: job.id, status });
  // A released claim gave its attempt back; a stale one used it up.
  const attempt = !tip ? 1 : tip.state === 'released' ? tip.attempt : tip.attempt + 1;
  if (tip && attempt > job.maxAttempts) {
    const failed = chainCommit(ctx, job, tip.commit, job.tree, 'failed', tip.attempt, [
      { key: 'Reason', value: 'lease_expired' },
      ...workerTrailers(worker),
    ]);
    ctx.objects.write('commit', failed.object.body);
    moveChain(ctx, job, tip.commit, failed.oid, undefined, 'claim_conflict', true);
    return { kind: 'expired', commit: failed.oid, attempt: tip.attempt };
  }
  const expires = now + leaseMs;
  const claim = leaseCommit(ctx, job, tip?.commit ?? job.commit, 'claimed', attempt, worker, expires);
  ctx.objects.write('commit', claim.object.body);
  moveChain(ctx, job, tip?.commit, claim.oid, worker.name, 'claim_conflict');
  const lease: Lease = { job, worker, attempt, tip: claim.oid, leaseMs, expires };
  return tip ? { kind: 'claimed', lease, previous: tip } : { kind: 'claimed', lease };
}

/** Extends the lease (state `running`); throws `lease_lost` when the chain moved under us. */
export function heartbeat(ctx: Ledger, lease: Lease): void {
  const expires = ctx.clock() + lease.leaseMs;
  const beat = leaseCommit(ctx, lease.job, lease.tip, 'running', lease.attempt, lease.worker, expires);
  ctx.objects.write('commit', beat.object.body);
  moveChain(ctx, lease.job, lease.tip, beat.oid, lease.worker.name, 'lease_lost');
  lease.tip = beat.oid;
  lease.expires = expires;
}

/** Hands the job back without using up the attempt (worker shutting down). */
export function releaseLease(ctx: Ledger, lease: Lease, reason = 'worker_stopped'): Oid {
  const released = chainCommit(
    ctx,
    lease.job,
    lease.tip,
    lease.job.tree,
    'released',
    lease.attempt,
    [...workerTrailers(lease.worker), { key: 'Not-Before', value: iso(ctx.clock()) }, { key: 'Reason', value: reason }],
    lease.worker.name,
  );
  ctx.objects.write('commit', released.object.body);
  moveChain(ctx, lease.job, lease.tip, released.oid, lease.worker.name, 'lease_lost');
  lease.tip = released.oid;
  return released.oid;
}

export interface AttemptRecord {
  ok: boolean;
  exitCode?: number;
  /** Objects of the attempt's tree (`poe.json`, `result.json`, `outputs/`), root last. */
  objects: GitObject[];
  tree: Oid;
  trailers: Trailer[];
}

export type FinishOutcome = { kind: 'succeeded' | 'failed'; commit: Oid } | { kind: 'retry'; commit: Oid; notBefore: number };

/**
 * Records a finished attempt: the result (terminal, creates `result`) when it succeeded or was
 * the last allowed, else a `retry` commit due after the backoff. Both keep the attempt's tree,
 * so every attempt's proof stays on the chain. Throws `lease_lost` when the chain moved.
 */
export function finishAttempt(ctx: Ledger, lease: Lease, record: AttemptRecord): FinishOutcome {
  const final = record.ok || lease.attempt >= lease.job.maxAttempts;
  const state: ChainState = record.ok ? 'succeeded' : final ? 'failed' : 'retry';
  const notBefore = ctx.clock() + retryDelayMs(lease.job, lease.attempt);
  const extra: Trailer[] = [
    ...(record.exitCode !== undefined ? [{ key: 'Exit-Code', value: String(record.exitCode) }] : []),
    ...(state === 'retry' ? [{ key: 'Not-Before', value: iso(notBefore) }] : []),
    ...record.trailers,
  ];
  const commit = chainCommit(ctx, lease.job, lease.tip, record.tree, state, lease.attempt, extra, lease.worker.name);
  const objects = [...record.objects, commit.object];
  if (objects.length >= 64) ctx.objects.writeMany(objects);
  else for (const object of objects) ctx.objects.write(object.type, object.body);
  moveChain(ctx, lease.job, lease.tip, commit.oid, lease.worker.name, 'lease_lost', final);
  lease.tip = commit.oid;
  return state === 'retry'
    ? { kind: 'retry', commit: commit.oid, notBefore }
    : { kind: state as 'succeeded' | 'failed', commit: commit.oid };
}

/**
 * Cancels a job that has not finished: an `aborted` commit on the chain, which stops a running
 * worker (it watches the chain) and refuses later claims. `job_finished` when already terminal.
 */
export function cancelJob(ctx: Bus, job: Job, reason: string, by: string): { commit: Oid; previous?: ChainEntry } {
  for (let attempt = 1; ; attempt++) {
    const tip = chainTip(ctx.objects, ctx.refs, job.hex);
    if (tip && (tip.state === 'succeeded' || tip.state === 'failed' || tip.state === 'aborted'))
      throw new GatosError('job_finished', `job ${job.id} is already ${tip.state}`, { job_id: job.id, status: tip.state });
    const abort = chainCommit(
      ctx,
      job,
      tip?.commit ?? job.commit,
      job.tree,
      'aborted',
      tip?.attempt ?? 0,
      [
        { key: 'Reason', value: reason.replace(/\s+/g, ' ').trim() || 'cancelled' },
        { key: 'Cancelled-By', value: by },
      ],
      by,
    );
    ctx.objects.write('commit', abort.object.body);
    try {
      moveChain(ctx, job, tip?.commit, abort.oid, undefined, 'claim_conflict');
      return tip ? { commit: abort.oid, previous: tip } : { commit: abort.oid };
    } catch (err) {
      if (attempt >= 5 || !hasCode(err, 'claim_conflict')) throw err;
    }
  }
}

/** `cancelJob`, then the `job.aborted` announcement. */
export async function cancel(ctx: Bus, job: Job, reason: string, by: string, onAnnounceError?: (err: unknown) => void): Promise<Oid> {
  const { commit, previous } = cancelJob(ctx, job, reason, by);
  await announce(
    ctx,
    job.ns,
    [{ transition: 'aborted', job_id: job.id, commit, attempt: previous?.attempt ?? 0, reason }],
    onAnnounceError,
  );
  return commit;
}
