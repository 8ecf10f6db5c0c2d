/**
 * Enqueueing jobs: the job commit (a root commit whose tree holds `job.yaml`) is created at
 * `refs/gatos/jobs/<hex>/job` by compare-and-swap with zero expected old value, then announced
 * (`job.created` on the events and discovery topics). Enqueueing a manifest whose job id exists
 * already changes nothing and reports `created: false` (a job id names its manifest; re-running
 * identical work needs a changed input). A batch writes one pack and one ref transaction.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { blake3Bytes } from '../codec/blake3.js';
import { derivedUlid } from '../codec/ulid.js';
import { GatosError, hasCode } from '../errors.js';
import { serializeCommit, serializeTree } from '../git/object-codec.js';
import { hashObject } from '../git/oid.js';
import type { GitObject, Oid } from '../git/ports.js';
import { withTrailers } from '../git/trailers.js';
import type { Bus } from '../messages/publish.js';
import { announce } from './events.js';
import { type JobManifest, jobId, manifestFileBytes } from './manifest.js';
import { hexOf, jobRefs, readJob } from './store.js';

export interface EnqueueOptions {
  /** Namespace recorded on the job and its messages (default `jobs`). */
  ns?: string;
  /** Runs allowed before the job fails for good (default 3). */
  maxAttempts?: number;
  /** Delay before the first retry, doubled per attempt (default 1000 ms). */
  backoffMs?: number;
  onAnnounceError?: (err: unknown) => void;
}

export interface Enqueued {
  job_id: string;
  commit: Oid;
  ulid: string;
  created: boolean;
}

export const JOB_PLANE_IDENTITY = { name: 'gatos-job-plane', email: 'job-plane@gatos.local', timezone: '+0000' };

interface Limits {
  ns: string;
  maxAttempts: number;
  backoffMs: number;
}

function checkOptions(options: EnqueueOptions): Limits {
  const ns = options.ns ?? 'jobs';
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(ns))
    throw new GatosError('invalid_argument', `namespace ${JSON.stringify(ns)} must be /-separated words of A-Z a-z 0-9 . _ -`);
  const maxAttempts = options.maxAttempts ?? 3;
  const backoffMs = options.backoffMs ?? 1000;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100)
    throw new GatosError('invalid_argument', `max attempts must be 1-100, got ${maxAttempts}`);
  if (!Number.isSafeInteger(backoffMs) || backoffMs < 0) throw new GatosError('invalid_argument', `retry backoff must be >= 0 ms`);
  return { ns, maxAttempts, backoffMs };
}

function jobObjects(manifest: JobManifest, id: string, now: number, limits: Limits) {
  const blob = manifestFileBytes(manifest);
  const tree = serializeTree([{ mode: '100644', name: 'job.yaml', oid: hashObject('blob', blob) }]);
  const who = { ...JOB_PLANE_IDENTITY, timestamp: Math.floor(now / 1000) };
  const message = withTrailers(`job ${manifest.ulid}`, [
    { key: 'Job-Id', value: id },
    { key: 'Job-Ns', value: limits.ns },
    { key: 'Max-Attempts', value: String(limits.maxAttempts) },
    { key: 'Retry-Backoff-Ms', value: String(limits.backoffMs) },
  ]);
  const commit = serializeCommit({ tree: hashObject('tree', tree), parents: [], author: who, committer: who, message });
  const objects: GitObject[] = [
    { type: 'blob', body: blob },
    { type: 'tree', body: tree },
    { type: 'commit', body: commit },
  ];
  return { objects, commit: hashObject('commit', commit) };
}

/** Enqueues manifests (already validated by `checkManifest`); one receipt per manifest, in order. */
export async function enqueue(ctx: Bus, manifests: readonly JobManifest[], options: EnqueueOptions = {}): Promise<Enqueued[]> {
  const limits = checkOptions(options);
  for (let attempt = 1; ; attempt++) {
    try {
      const { receipts, created } = enqueueOnce(ctx, manifests, limits);
      await announce(
        ctx,
        limits.ns,
        created.map((r) => ({ transition: 'created' as const, job_id: r.job_id, commit: r.commit })),
        options.onAnnounceError,
      );
      return receipts;
    } catch (err) {
      if (attempt >= 5 || !(hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked'))) throw err;
      await sleep(Math.random() * Math.min(500, 25 * 2 ** attempt));
    }
  }
}

function enqueueOnce(ctx: Bus, manifests: readonly JobManifest[], limits: Limits): { receipts: Enqueued[]; created: Enqueued[] } {
  const now = ctx.clock();
  const receipts: Enqueued[] = [];
  const created: Enqueued[] = [];
  const objects: GitObject[] = [];
  const fresh = new Map<string, Enqueued>();
  for (const original of manifests) {
    const id = jobId(original);
    const hex = hexOf(id);
    const earlier = fresh.get(hex);
    if (earlier) {
      receipts.push({ ...earlier, created: false });
      continue;
    }
    const existing = readJob(ctx.objects, ctx.refs, hex);
    if (existing) {
      receipts.push({ job_id: id, commit: existing.commit, ulid: existing.manifest.ulid ?? '', created: false });
      continue;
    }
    // The alias is derived from the clock and the id, so the same enqueue writes the same bytes.
    const manifest = original.ulid ? original : { ...original, ulid: derivedUlid(now, blake3Bytes(id)) };
    const job = jobObjects(manifest, id, now, limits);
    objects.push(...job.objects);
    const receipt = { job_id: id, commit: job.commit, ulid: manifest.ulid as string, created: true };
    fresh.set(hex, receipt);
    receipts.push(receipt);
    created.push(receipt);
  }
  if (created.length === 0) return { receipts, created };
  if (objects.length >= 64) ctx.objects.writeMany(objects);
  else for (const object of objects) ctx.objects.write(object.type, object.body);
  const transaction = ctx.refs.transaction();
  for (const receipt of created) transaction.create(jobRefs.job(hexOf(receipt.job_id)), receipt.commit);
  transaction.commit();
  return { receipts, created };
}
