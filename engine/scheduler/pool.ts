/**
 * The compute pool: a piscina pool of worker threads running the typed tasks of tasks.ts.
 *
 * - Backpressure: at most `maxInFlight` tasks are submitted at once; `run` waits for a slot, so
 *   a producer that awaits `run` can never queue unbounded work or results.
 * - Progress: `onProgress` (and the `gatos:scheduler` diagnostics channel) see submitted,
 *   completed and in-flight counts after every change.
 * - Errors: a task's GatosError comes back with its code; a crashed worker becomes
 *   `worker_failed`.
 * - `close()` drains and stops the threads, so the process exits normally.
 *
 * @example
 *   const pool = new ComputePool({ threads: 2 });
 *   const { digests } = await pool.run({ kind: 'hash', algo: 'blake3', data, offsets });
 *   await pool.close();
 */
import { channel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import type { Piscina } from 'piscina';
import { GatosError } from '../errors.js';
import type { ResultOf, Task, WorkerReply } from './tasks.js';

export interface PoolProgress {
  submitted: number;
  completed: number;
  failed: number;
  inFlight: number;
}

export interface PoolOptions {
  /** Worker threads; default: the number of CPUs. */
  threads?: number;
  /** Tasks submitted at once; default: 2 per thread. */
  maxInFlight?: number;
  onProgress?: (progress: PoolProgress) => void;
  /** Caps each worker's V8 old generation (MB), so garbage is collected before memory grows. */
  maxOldGenerationSizeMb?: number;
  /**
   * Caps each worker's young generation (MB). Scans that turn every object read into short-lived
   * garbage fill the default (48 MB) between collections; a smaller one is collected more often
   * at about the same total cost, and each worker's memory stays lower.
   */
  maxYoungGenerationSizeMb?: number;
}

const progressChannel = channel('gatos:scheduler');

/**
 * Workers compile their hot code on their own thread. With every core busy running a worker,
 * V8's background compiler threads only compete with them: measured on the 2-core machine, a
 * 100k-commit scan on 2 workers takes 1.40 s this way against 1.56 s with background
 * compilation (docs/decisions/0001). The flag is read when an isolate starts, so setting it
 * before the first worker exists affects the workers and leaves the main thread as it was.
 */
let compilerFlagSet = false;
function compileOnWorkerThreads(): void {
  if (compilerFlagSet) return;
  compilerFlagSet = true;
  setFlagsFromString('--no-concurrent-recompilation');
}
const WORKER_URL = new URL('../../workers/task-worker-entry.cjs', import.meta.url);

/**
 * piscina, loaded when the first pool is created: a command that only reads `--threads`, or runs
 * in one thread (a small repository's export, `export plan`), does not pay its ~20 ms of loading.
 */
let piscinaClass: typeof Piscina | undefined;
function loadPiscina(): typeof Piscina {
  piscinaClass ??= (createRequire(import.meta.url)('piscina') as typeof import('piscina')).Piscina;
  return piscinaClass;
}

/** Validates a `--threads` value. */
export function parseThreads(value: string | number | undefined): number {
  if (value === undefined) return availableParallelism();
  const n = Number(value);
  if ((typeof value === 'string' && !/^\d+$/.test(value)) || !Number.isInteger(n) || n < 1 || n > 256)
    throw new GatosError('invalid_argument', `--threads must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
  return n;
}

export class ComputePool {
  readonly threads: number;
  readonly maxInFlight: number;
  private readonly piscina: Piscina;
  private readonly waiting: Array<() => void> = [];
  private readonly onProgress: ((progress: PoolProgress) => void) | undefined;
  private progress: PoolProgress = { submitted: 0, completed: 0, failed: 0, inFlight: 0 };
  /** Set by `close`: no task is taken from then on. */
  private closing: Promise<void> | undefined;

  constructor(options: PoolOptions = {}) {
    this.threads = parseThreads(options.threads);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? this.threads * 2);
    this.onProgress = options.onProgress;
    compileOnWorkerThreads();
    const Pool = loadPiscina();
    this.piscina = new Pool({
      filename: WORKER_URL.href,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 1000,
      resourceLimits: {
        ...(options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : {}),
        ...(options.maxYoungGenerationSizeMb ? { maxYoungGenerationSizeMb: options.maxYoungGenerationSizeMb } : {}),
      },
    });
  }

  get stats(): PoolProgress {
    return { ...this.progress };
  }

  private report(): void {
    const snapshot = this.stats;
    this.onProgress?.(snapshot);
    if (progressChannel.hasSubscribers) progressChannel.publish(snapshot);
  }

  private async acquire(): Promise<void> {
    if (this.closing) throw new GatosError('pool_closed', 'the compute pool is closed');
    if (this.progress.inFlight < this.maxInFlight) {
      this.progress.inFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.closing) throw new GatosError('pool_closed', 'the compute pool is closed');
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.progress.inFlight--;
  }

  /** Runs one task on a worker; `transfer` lists input buffers to move instead of copy. */
  async run<T extends Task>(task: T, transfer: ArrayBuffer[] = []): Promise<ResultOf<T>> {
    await this.acquire();
    this.progress.submitted++;
    this.report();
    let reply: WorkerReply;
    try {
      reply = (await this.piscina.run(task, { transferList: transfer })) as WorkerReply;
    } catch (err) {
      this.progress.failed++;
      throw new GatosError(
        'worker_failed',
        `worker crashed running ${task.kind}: ${(err as Error).message}`,
        { task: task.kind },
        { cause: err },
      );
    } finally {
      this.progress.completed++;
      this.release();
      this.report();
    }
    if (!reply.ok) {
      this.progress.failed++;
      throw GatosError.fromJSON(reply.error);
    }
    return reply.result as ResultOf<T>;
  }

  /** Waits for running tasks, then stops every worker thread; every call returns the same promise. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = this.piscina.close();
      for (const wake of this.waiting.splice(0)) wake();
    }
    return this.closing;
  }
}
