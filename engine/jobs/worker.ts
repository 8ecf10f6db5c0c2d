/**
 * The worker loop behind `gatos jobs work`. It learns of jobs by listing the job refs on start
 * (and every `rescanMs` as a safety net) and from the discovery topic, looks at the unfinished
 * ones whenever something happens and at least every `pollMs` (retries fall due, leases run
 * out), claims them by CAS, runs each command in its own process
 * group, renews the lease while it runs, watches the claim chain so a cancel or a takeover stops
 * the command at once, and records the result with its Proof-of-Execution. Losing a claim race
 * is normal: the loser waits a few jittered milliseconds and tries the next job.
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasCode } from '../errors.js';
import type { Oid } from '../git/ports.js';
import type { Ledger } from '../ledger/context.js';
import { createKey, hasKey, loadPrivateKey, publicKeyId } from '../ledger/keys.js';
import { addActorKey, keysOf, readTrust, updateTrust } from '../ledger/trust.js';
import { commitUlid } from '../messages/publish.js';
import { type Subscription, subscribe } from '../messages/subscribe.js';
import { headRef } from '../messages/topics.js';
import { announce, PENDING_TOPIC, type Transition, type TransitionNote } from './events.js';
import { claimJob, finishAttempt, heartbeat, type Lease, releaseLease, type WorkerIdentity } from './lifecycle.js';
import { attemptRecord } from './proof.js';
import { runProcess } from './run-process.js';
import {
  assertWorkerId,
  type ChainEntry,
  type ChainState,
  JOBS_PREFIX,
  type Job,
  jobRefs,
  readChainEntry,
  readJob,
  statusAt,
} from './store.js';

const TERMINAL = new Set<ChainState>(['succeeded', 'failed', 'aborted']);

export interface WorkerOptions {
  worker: string;
  /** Jobs run at once (default 1). */
  concurrency?: number;
  /** Lease length; renewed every third of it (default 30 s). */
  leaseMs?: number;
  /** Stop after starting this many jobs. */
  maxJobs?: number;
  /** Stop once no job is pending (claimable now or later) and none runs here. */
  exitWhenIdle?: boolean;
  /** Bytes of stdout and of stderr kept per attempt (default 1 MiB). */
  outputCap?: number;
  /** Where relative `cwd`s resolve (default: the current directory). */
  workdir?: string;
  /** Longest wait between looks at the known jobs (default 1000 ms). */
  pollMs?: number;
  /** Time between full listings of the job refs, the safety net for lost notifications (default 10 s). */
  rescanMs?: number;
  /** Aborting stops claiming, stops running commands and releases their claims. */
  signal?: AbortSignal;
  onEvent?: (event: WorkerEvent) => void;
}

export interface WorkerEvent {
  event: Transition | 'lost' | 'conflict' | 'expired' | 'warning';
  job_id?: string;
  attempt?: number;
  exit_code?: number | null;
  detail?: string;
  /** ms from starting the claim to owning it (claimed events). */
  claim_ms?: number;
}

export interface WorkerSummary {
  worker: string;
  started: number;
  succeeded: number;
  failed: number;
  retried: number;
  lost: number;
  conflicts: number;
}

/** The worker's signing identity `agent:<worker>`: its key is made and trusted on first use. */
export function workerIdentity(ctx: Ledger, worker: string): WorkerIdentity {
  assertWorkerId(worker);
  const actor = `agent:${worker}`;
  if (!hasKey(ctx.keyDir, actor)) createKey(ctx.keyDir, actor);
  const key = loadPrivateKey(ctx.keyDir, actor);
  const publicKey = publicKeyId(key);
  if (!keysOf(readTrust(ctx.objects, ctx.refs).graph, actor).includes(publicKey))
    updateTrust(ctx.objects, ctx.refs, ctx.clock, `trust: add job worker key for ${actor}`, (graph) =>
      addActorKey(graph, actor, publicKey),
    );
  return { name: worker, key, publicKey };
}

interface Candidate {
  hex: string;
  tip?: ChainEntry;
}

export class Worker {
  private readonly identity: WorkerIdentity;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  /** Running jobs; their promises never reject (a failure goes to `failure`). */
  private readonly active = new Map<string, Promise<void>>();
  /**
   * The first error a running job's bookkeeping threw. Kept here rather than left to the wait's
   * race: a job failing while the loop is elsewhere would go unhandled (and end the process),
   * and of two failing in one turn the race would report one and swallow the other.
   */
  private failure: { error: unknown } | undefined;
  private readonly leases = new Set<Lease>();
  private readonly jobs = new Map<string, Job>();
  private readonly entries = new Map<Oid, ChainEntry>();
  private readonly stopRunning = new AbortController();
  private readonly known = new Set<string>();
  private readonly outbox: Array<{ ns: string; note: TransitionNote }> = [];
  private flushing: Promise<void> | undefined;
  private readonly rescanMs: number;
  private lastRescan = 0;
  private woken = false;
  private resolveWait: (() => void) | undefined;
  private readonly summary: WorkerSummary;

  constructor(
    private readonly ctx: Ledger,
    private readonly options: WorkerOptions,
  ) {
    this.identity = workerIdentity(ctx, options.worker);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.rescanMs = options.rescanMs ?? 10_000;
    this.summary = { worker: options.worker, started: 0, succeeded: 0, failed: 0, retried: 0, lost: 0, conflicts: 0 };
  }

  private emit(event: WorkerEvent): void {
    this.options.onEvent?.(event);
  }

  /**
   * Queues a transition for the message plane. One publisher per worker drains the queue in
   * batches, in order, off the job's critical path (the refs already hold the truth).
   */
  private announce(ns: string, note: TransitionNote): void {
    this.outbox.push({ ns, note });
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (this.outbox.length > 0) {
      const ns = (this.outbox[0] as { ns: string }).ns;
      let count = 0;
      while (count < this.outbox.length && (this.outbox[count] as { ns: string }).ns === ns) count++;
      const notes = this.outbox.splice(0, count).map((item) => item.note);
      await announce(this.ctx, ns, notes, (err) => this.emit({ event: 'warning', detail: `announce: ${(err as Error).message}` }));
    }
    this.flushing = undefined;
  }

  private job(hex: string): Job | undefined {
    let job = this.jobs.get(hex);
    if (!job) {
      job = readJob(this.ctx.objects, this.ctx.refs, hex);
      if (job) this.jobs.set(hex, job);
    }
    return job;
  }

  private entry(oid: Oid): ChainEntry {
    let entry = this.entries.get(oid);
    if (!entry) {
      entry = readChainEntry(this.ctx.objects, oid);
      if (this.entries.size >= 10_000) this.entries.clear();
      this.entries.set(oid, entry);
    }
    return entry;
  }

  /** Every job without a terminal state, found by listing the job refs (on start and as a safety net). */
  private rescan(): void {
    const finished = new Set<string>();
    for (const { name, oid } of this.ctx.refs.list(JOBS_PREFIX)) {
      const match = /^refs\/gatos\/jobs\/([0-9a-f]{64})\/(job|claim)$/.exec(name);
      if (!match) continue;
      const hex = match[1] as string;
      if (match[2] === 'claim' && TERMINAL.has(this.entry(oid).state)) finished.add(hex);
      else if (match[2] === 'job' && !finished.has(hex)) this.known.add(hex);
    }
    this.lastRescan = this.ctx.clock();
  }

  /** Drops a finished job from every cache, so a long-lived worker stays small. */
  private forget(hex: string, tip: Oid | undefined): void {
    this.known.delete(hex);
    this.jobs.delete(hex);
    if (tip) this.entries.delete(tip);
  }

  /** Known unfinished jobs, oldest first, with their current chain tips. */
  private candidates(): Candidate[] {
    const found: Array<Candidate & { order: string }> = [];
    for (const hex of this.known) {
      const tipOid = this.ctx.refs.resolve(jobRefs.claim(hex));
      const tip = tipOid ? this.entry(tipOid) : undefined;
      const job = this.job(hex);
      if (!job || (tip && TERMINAL.has(tip.state))) {
        this.forget(hex, tipOid);
        continue;
      }
      found.push({ hex, order: job.manifest.ulid ?? hex, ...(tip ? { tip } : {}) });
    }
    return found.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  }

  /** Runs until the job limit, idleness (with `exitWhenIdle`) or the abort signal. */
  async run(): Promise<WorkerSummary> {
    const limit = this.options.maxJobs ?? Number.POSITIVE_INFINITY;
    const signal = this.options.signal;
    const onAbort = () => {
      this.stopRunning.abort();
      this.wake();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const discovery = this.watchDiscovery();
    this.rescan();
    try {
      while (!signal?.aborted && !this.failure) {
        const now = this.ctx.clock();
        if (now - this.lastRescan >= this.rescanMs) this.rescan();
        let pending = 0;
        let nextDue = now + this.pollMs;
        for (const candidate of this.candidates()) {
          if (this.active.has(candidate.hex)) continue;
          const { status, claimable } = statusAt(candidate.tip, now);
          if (status === 'pending') pending++;
          if (!claimable) {
            const due = candidate.tip?.notBefore ?? candidate.tip?.leaseExpires;
            if (due !== undefined && due > now) nextDue = Math.min(nextDue, due);
            continue;
          }
          if (this.summary.started >= limit || this.active.size >= this.concurrency || this.failure) continue;
          await this.tryClaim(candidate.hex);
        }
        if (this.summary.started >= limit && this.active.size === 0) break;
        if (this.options.exitWhenIdle && pending === 0 && this.active.size === 0) break;
        await this.idle(Math.max(5, nextDue - this.ctx.clock() + 5));
      }
    } finally {
      discovery?.stop();
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) this.stopRunning.abort();
      await Promise.allSettled(this.active.values());
      while (this.flushing) await this.flushing;
    }
    if (this.failure) throw this.failure.error;
    return this.summary;
  }

  /** Asks the loop to scan again now (a wake before the wait starts is not lost). */
  private wake(): void {
    this.woken = true;
    this.resolveWait?.();
  }

  /** Waits for a wake, a running job to end, or `ms`. */
  private async idle(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((done) => {
      this.resolveWait = done;
      timer = setTimeout(done, ms);
    });
    await Promise.race([wait, ...this.active.values()]);
    clearTimeout(timer);
    this.resolveWait = undefined;
    this.woken = false;
  }

  /** Wakes the loop when the discovery topic gets a message. */
  private watchDiscovery(): Subscription | undefined {
    const head = this.ctx.refs.resolve(headRef(PENDING_TOPIC));
    const since = head ? commitUlid(this.ctx.objects, head) : undefined;
    return subscribe(
      this.ctx,
      PENDING_TOPIC,
      since,
      (message) => {
        const envelope = JSON.parse(Buffer.from(message.canonical_json, 'base64').toString('utf8')) as { payload?: { job_id?: unknown } };
        const id = envelope.payload?.job_id;
        if (typeof id === 'string' && /^blake3:[0-9a-f]{64}$/.test(id)) this.known.add(id.slice(7));
        this.wake();
      },
      (err) => this.emit({ event: 'warning', detail: `discovery: ${(err as Error).message}` }),
    );
  }

  private async tryClaim(hex: string): Promise<void> {
    const job = this.job(hex);
    if (!job) return;
    const t0 = performance.now();
    try {
      const outcome = claimJob(this.ctx, job, this.identity, this.leaseMs);
      if (outcome.kind === 'expired') {
        this.emit({ event: 'expired', job_id: job.id, attempt: outcome.attempt, detail: 'the last attempt lost its lease' });
        this.announce(job.ns, {
          transition: 'failed',
          job_id: job.id,
          commit: outcome.commit,
          attempt: outcome.attempt,
          reason: 'lease_expired',
        });
        return;
      }
      const { lease } = outcome;
      this.summary.started++;
      this.emit({ event: 'claimed', job_id: job.id, attempt: lease.attempt, claim_ms: performance.now() - t0 });
      const running = this.execute(lease)
        .catch((error: unknown) => {
          this.failure ??= { error };
          this.wake();
        })
        .finally(() => {
          this.active.delete(hex);
          this.leases.delete(lease);
        });
      this.leases.add(lease);
      this.active.set(hex, running);
    } catch (err) {
      if (!hasCode(err, 'claim_conflict')) throw err;
      this.summary.conflicts++;
      this.emit({ event: 'conflict', job_id: job.id });
      // Someone else won: back off a few jittered milliseconds, then try the next job.
      await sleep(Math.random() * 5);
    }
  }

  private childEnv(lease: Lease): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      GATOS_JOB_ID: lease.job.id,
      GATOS_JOB_ATTEMPT: String(lease.attempt),
      GATOS_WORKER_ID: this.identity.name,
      ...(lease.job.manifest.env ?? {}),
    };
  }

  private async execute(lease: Lease): Promise<void> {
    const { job } = lease;
    const note = (transition: Transition, commit: Oid, extra: Partial<TransitionNote> = {}): TransitionNote => ({
      transition,
      job_id: job.id,
      commit,
      attempt: lease.attempt,
      worker: this.identity.name,
      ...extra,
    });
    this.announce(job.ns, note('claimed', lease.tip));
    const stop = new AbortController();
    const stopAll = () => stop.abort();
    this.stopRunning.signal.addEventListener('abort', stopAll, { once: true });
    let lost = false;
    const running = runProcess(
      {
        argv: [...job.manifest.command, ...job.manifest.args],
        env: this.childEnv(lease),
        cwd: resolve(this.options.workdir ?? process.cwd(), job.manifest.cwd ?? '.'),
        timeoutMs: job.manifest.timeout * 1000,
        outputCap: this.options.outputCap ?? 1024 * 1024,
      },
      this.ctx.clock,
      stop.signal,
    );
    const renew = () => {
      try {
        heartbeat(this.ctx, lease);
      } catch (err) {
        if (hasCode(err, 'lease_lost')) {
          lost = true;
          stop.abort();
        } else if (!hasCode(err, 'ref_locked')) {
          this.emit({ event: 'warning', job_id: job.id, detail: `heartbeat: ${(err as Error).message}` });
        }
      }
    };
    renew();
    if (!lost) this.announce(job.ns, note('running', lease.tip));
    // Watch the chain: a cancel or a takeover moves `claim` away from our tip.
    const watch = setInterval(() => {
      if (lost) return;
      if (this.ctx.refs.resolve(jobRefs.claim(job.hex)) !== lease.tip) {
        lost = true;
        stop.abort();
      } else if (this.ctx.clock() >= lease.expires - (lease.leaseMs * 2) / 3) {
        renew();
      }
    }, 100);
    const outcome = await running;
    clearInterval(watch);
    this.stopRunning.signal.removeEventListener('abort', stopAll);
    if (lost || this.ctx.refs.resolve(jobRefs.claim(job.hex)) !== lease.tip) {
      this.summary.lost++;
      this.emit({ event: 'lost', job_id: job.id, attempt: lease.attempt, detail: 'the claim chain moved (cancelled or taken over)' });
      return;
    }
    try {
      if (outcome.cancelled) {
        const commit = releaseLease(this.ctx, lease);
        this.emit({ event: 'released', job_id: job.id, attempt: lease.attempt });
        this.announce(job.ns, note('released', commit, { reason: 'worker_stopped' }));
        return;
      }
      const finished = finishAttempt(this.ctx, lease, attemptRecord(lease, outcome));
      const exit = outcome.exitCode ?? undefined;
      const extra: Partial<TransitionNote> = {
        ...(exit !== undefined ? { exit_code: exit } : {}),
        ...(outcome.timedOut ? { reason: 'timeout' } : outcome.error ? { reason: 'spawn_failed' } : {}),
      };
      if (finished.kind === 'retry') {
        this.summary.retried++;
        extra.not_before = new Date(finished.notBefore).toISOString();
      } else if (finished.kind === 'succeeded') this.summary.succeeded++;
      else this.summary.failed++;
      this.emit({ event: finished.kind, job_id: job.id, attempt: lease.attempt, exit_code: outcome.exitCode });
      this.announce(job.ns, note(finished.kind, finished.commit, extra));
    } catch (err) {
      if (!hasCode(err, 'lease_lost')) throw err;
      this.summary.lost++;
      this.emit({ event: 'lost', job_id: job.id, attempt: lease.attempt, detail: 'the claim chain moved before the result was written' });
    }
  }
}

/** Runs a worker until it stops (see `WorkerOptions`). */
export function runWorker(ctx: Ledger, options: WorkerOptions): Promise<WorkerSummary> {
  return new Worker(ctx, options).run();
}
