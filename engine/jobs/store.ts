/**
 * Where jobs live in Git and how their lifecycle is read back (decision 0007). Per job, under
 * `refs/gatos/jobs/<job-id hex>/`:
 *
 *   job              the job commit (`job.yaml` in its tree; trailers Job-Id, Job-Ulid, Max-Attempts…)
 *   claim            the job's lifecycle chain: claims, heartbeats, retries, cancel, the result
 *   claims/<worker>  each worker's newest commit on that chain: the audit trail of who ran it
 *   result           the result commit with `poe.json` (terminal; created once)
 *
 * Every transition moves `claim` by compare-and-swap, so one ref serializes the job: two
 * workers can never both hold a live claim, and a cancelled job refuses later claims and results.
 * The status is derived from the tip of `claim` and the clock.
 */
import { parseJson } from '../codec/canonical-json.js';
import { GatosError } from '../errors.js';
import { findTreeEntry, readCommit } from '../git/object-codec.js';
import type { ObjectStore, Oid, RefStore } from '../git/ports.js';
import { assertRefComponent } from '../git/refname.js';
import { parseTrailers, type Trailer, trailerValue } from '../git/trailers.js';
import { type JobManifest, parseManifestText } from './manifest.js';

export const JOBS_PREFIX = 'refs/gatos/jobs/';

export type JobStatus = 'pending' | 'claimed' | 'running' | 'succeeded' | 'failed' | 'aborted';
/** What a commit on the `claim` chain records. `retry` and `released` make the job pending again. */
export type ChainState = 'claimed' | 'running' | 'retry' | 'released' | 'aborted' | 'succeeded' | 'failed';
export const STATUSES: readonly JobStatus[] = ['pending', 'claimed', 'running', 'succeeded', 'failed', 'aborted'];

export const jobRefs = {
  job: (hex: string) => `${JOBS_PREFIX}${hex}/job`,
  claim: (hex: string) => `${JOBS_PREFIX}${hex}/claim`,
  workerClaim: (hex: string, worker: string) => `${JOBS_PREFIX}${hex}/claims/${worker}`,
  result: (hex: string) => `${JOBS_PREFIX}${hex}/result`,
};

export function hexOf(jobId: string): string {
  return jobId.slice('blake3:'.length);
}

/** Worker ids are one ref component of `[A-Za-z0-9._-]`. */
export function assertWorkerId(worker: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(worker))
    throw new GatosError('invalid_argument', `worker id must be 1-64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(worker)}`, { worker });
  return assertRefComponent(worker, 'worker id');
}

export interface Job {
  id: string;
  hex: string;
  commit: Oid;
  /** The job commit's tree; claim-chain commits reuse it. */
  tree: Oid;
  manifest: JobManifest;
  /** The namespace the job was enqueued under (`Job-Ns`; messages carry it as `ns`). */
  ns: string;
  maxAttempts: number;
  /** First retry delay; doubles per attempt (capped at 10 minutes). */
  backoffMs: number;
  enqueuedAt: number;
}

export interface ChainEntry {
  commit: Oid;
  state: ChainState;
  attempt: number;
  trailers: Trailer[];
  worker?: string;
  workerKey?: string;
  /** Lease end (ms) of a `claimed`/`running` entry. */
  leaseExpires?: number;
  /** Earliest next claim (ms) of a `retry` entry. */
  notBefore?: number;
  reason?: string;
  exitCode?: number;
  time: number;
}

function trailerInt(trailers: Trailer[], key: string): number | undefined {
  const value = trailerValue(trailers, key);
  return value !== undefined && /^-?\d+$/.test(value) ? Number(value) : undefined;
}

function trailerTime(trailers: Trailer[], key: string): number | undefined {
  const value = trailerValue(trailers, key);
  const ms = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Reads the job at `refs/gatos/jobs/<hex>/job`; undefined when there is none. */
export function readJob(objects: ObjectStore, refs: RefStore, hex: string): Job | undefined {
  const commit = refs.resolve(jobRefs.job(hex));
  if (!commit) return undefined;
  const parsed = readCommit(objects, commit);
  const entry = findTreeEntry(objects.read(parsed.tree).body, 'job.yaml');
  if (!entry) throw new GatosError('corrupt_object', `job commit ${commit} has no job.yaml`, { commit });
  const manifest = parseManifestText(Buffer.from(objects.read(entry.oid).body).toString('utf8'));
  const trailers = parseTrailers(parsed.message);
  return {
    id: `blake3:${hex}`,
    hex,
    commit,
    tree: parsed.tree,
    manifest,
    ns: trailerValue(trailers, 'Job-Ns') ?? 'jobs',
    maxAttempts: trailerInt(trailers, 'Max-Attempts') ?? 1,
    backoffMs: trailerInt(trailers, 'Retry-Backoff-Ms') ?? 1000,
    enqueuedAt: parsed.committer.timestamp * 1000,
  };
}

const CHAIN_STATES = new Set<string>(['claimed', 'running', 'retry', 'released', 'aborted', 'succeeded', 'failed']);

/** Parses one commit of a `claim` chain. */
export function readChainEntry(objects: ObjectStore, commit: Oid): ChainEntry {
  const parsed = readCommit(objects, commit);
  const trailers = parseTrailers(parsed.message);
  const state = trailerValue(trailers, 'Job-State') ?? '';
  if (!CHAIN_STATES.has(state)) throw new GatosError('corrupt_object', `commit ${commit} has no valid Job-State trailer`, { commit });
  const entry: ChainEntry = {
    commit,
    state: state as ChainState,
    attempt: trailerInt(trailers, 'Attempt') ?? 0,
    trailers,
    time: parsed.committer.timestamp * 1000,
  };
  const optional: Array<[keyof ChainEntry, string | number | undefined]> = [
    ['worker', trailerValue(trailers, 'Worker-Name')],
    ['workerKey', trailerValue(trailers, 'Worker-Id')],
    ['leaseExpires', trailerTime(trailers, 'Lease-Expires')],
    ['notBefore', trailerTime(trailers, 'Not-Before')],
    ['reason', trailerValue(trailers, 'Reason')],
    ['exitCode', trailerInt(trailers, 'Exit-Code')],
  ];
  for (const [key, value] of optional) if (value !== undefined) (entry as unknown as Record<string, unknown>)[key] = value;
  return entry;
}

export interface JobView {
  job_id: string;
  ns: string;
  status: JobStatus;
  attempt: number;
  max_attempts: number;
  job_commit: Oid;
  ulid?: string;
  worker?: string;
  lease_expires?: string;
  /** A retry waits until then. */
  not_before?: string;
  /** A claim whose lease ran out without a heartbeat; the job can be claimed again. */
  stale_claim?: boolean;
  reason?: string;
  exit_code?: number;
  result?: Oid;
  claim_tip?: Oid;
}

/** The status a chain tip means at time `now` (no tip: pending). */
export function statusAt(tip: ChainEntry | undefined, now: number): { status: JobStatus; claimable: boolean; stale: boolean } {
  if (!tip) return { status: 'pending', claimable: true, stale: false };
  switch (tip.state) {
    case 'claimed':
    case 'running': {
      const stale = (tip.leaseExpires ?? 0) <= now;
      return { status: stale ? 'pending' : tip.state, claimable: stale, stale };
    }
    case 'retry':
    case 'released':
      return { status: 'pending', claimable: (tip.notBefore ?? 0) <= now, stale: false };
    default:
      return { status: tip.state, claimable: false, stale: false };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export function viewOf(job: Job, tip: ChainEntry | undefined, result: Oid | undefined, now: number): JobView {
  const { status, stale } = statusAt(tip, now);
  const view: JobView = {
    job_id: job.id,
    ns: job.ns,
    status,
    attempt: tip?.attempt ?? 0,
    max_attempts: job.maxAttempts,
    job_commit: job.commit,
  };
  if (job.manifest.ulid) view.ulid = job.manifest.ulid;
  if (tip) {
    view.claim_tip = tip.commit;
    if (tip.worker) view.worker = tip.worker;
    if (tip.leaseExpires !== undefined && (tip.state === 'claimed' || tip.state === 'running')) view.lease_expires = iso(tip.leaseExpires);
    if (tip.notBefore !== undefined && tip.state === 'retry') view.not_before = iso(tip.notBefore);
    if (stale) view.stale_claim = true;
    if (tip.reason) view.reason = tip.reason;
    if (tip.exitCode !== undefined) view.exit_code = tip.exitCode;
  }
  if (result) view.result = result;
  return view;
}

/** Ids (hex) of every job in the repository, in ref order. */
export function listJobHexes(refs: RefStore): string[] {
  const hexes: string[] = [];
  for (const { name } of refs.list(JOBS_PREFIX)) {
    const match = /^refs\/gatos\/jobs\/([0-9a-f]{64})\/job$/.exec(name);
    if (match) hexes.push(match[1] as string);
  }
  return hexes;
}

export function chainTip(objects: ObjectStore, refs: RefStore, hex: string): ChainEntry | undefined {
  const tip = refs.resolve(jobRefs.claim(hex));
  return tip ? readChainEntry(objects, tip) : undefined;
}

/** One job's current view; `job_not_found` when absent. */
export function jobView(objects: ObjectStore, refs: RefStore, hex: string, now: number): JobView {
  const job = readJob(objects, refs, hex);
  if (!job) throw new GatosError('job_not_found', `no job blake3:${hex}`, { job_id: `blake3:${hex}` });
  return viewOf(job, chainTip(objects, refs, hex), refs.resolve(jobRefs.result(hex)), now);
}

/** Views of every job, optionally only those with one status. */
export function listJobs(objects: ObjectStore, refs: RefStore, now: number, status?: JobStatus): JobView[] {
  const views: JobView[] = [];
  for (const hex of listJobHexes(refs)) {
    const job = readJob(objects, refs, hex);
    if (!job) continue;
    const view = viewOf(job, chainTip(objects, refs, hex), refs.resolve(jobRefs.result(hex)), now);
    if (!status || view.status === status) views.push(view);
  }
  return views;
}

/**
 * Resolves what a user typed to a job id hex: `blake3:<hex>`, the bare hex, a unique hex prefix
 * of at least 8 digits, or a job's ULID alias.
 */
export function resolveJobId(objects: ObjectStore, refs: RefStore, text: string): string {
  const bare = text.startsWith('blake3:') ? text.slice(7) : text;
  if (/^[0-9a-f]{64}$/.test(bare)) {
    if (!refs.resolve(jobRefs.job(bare))) throw new GatosError('job_not_found', `no job blake3:${bare}`, { job_id: `blake3:${bare}` });
    return bare;
  }
  const hexes = listJobHexes(refs);
  let matches: string[] = [];
  if (/^[0-9a-f]{8,63}$/.test(bare)) matches = hexes.filter((hex) => hex.startsWith(bare));
  else if (/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/.test(text)) matches = hexes.filter((hex) => readJob(objects, refs, hex)?.manifest.ulid === text);
  else throw new GatosError('invalid_argument', `not a job id, id prefix (8+ hex digits) or ULID: ${JSON.stringify(text)}`, { job: text });
  if (matches.length === 1) return matches[0] as string;
  if (matches.length === 0) throw new GatosError('job_not_found', `no job matches ${text}`, { job: text });
  throw new GatosError('invalid_argument', `${text} matches ${matches.length} jobs; give more digits`, { job: text });
}

/** The parsed `result.json` of a result commit. */
export function readResultFile(objects: ObjectStore, commit: Oid): Record<string, unknown> | undefined {
  const entry = findTreeEntry(objects.read(readCommit(objects, commit).tree).body, 'result.json');
  return entry ? (parseJson(Buffer.from(objects.read(entry.oid).body).toString('utf8')) as Record<string, unknown>) : undefined;
}
