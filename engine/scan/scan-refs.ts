/**
 * Scans many refs through the compute pool and streams the decoded batches back as they finish.
 * Each ref's history is cut into batches of `batchSize` commits; a ref's next batch is submitted
 * when its previous one returns (the walk frontier is the continuation), and no more than the
 * pool's in-flight limit are outstanding — so memory is bounded by batch size, not repo size.
 *
 * @example
 *   for await (const batch of scanRefs(pool, gitDir, refs)) total += batch.count;
 */
import type { RefEntry } from '../git/ports.js';
import { type FrontierEntry, startFrontier } from '../git/walk.js';
import type { ComputePool } from '../scheduler/pool.js';
import type { ResultOf, ScanResult, ScanTask, Task } from '../scheduler/tasks.js';
import type { ScanRow } from './scan-range.js';

export interface ScanRefsOptions {
  /** Commits per worker task (default 2000). */
  batchSize?: number;
  /** Per ref, commits to exclude with everything they reach (`<since>..<tip>`). */
  since?: ReadonlyMap<string, string>;
}

export async function* scanRefs(
  pool: ComputePool,
  gitDir: string,
  refs: readonly RefEntry[],
  options: ScanRefsOptions = {},
): AsyncGenerator<ScanResult> {
  yield* scanRefsWith(pool, refs, options, (ref, frontier, limit): ScanTask => ({ kind: 'scan', gitDir, ref, frontier, limit }));
}

/**
 * The same batching and continuation for any task that walks one ref's range: `build` makes the
 * task for a ref, a frontier and a limit; its result must name the ref and the next frontier.
 */
export async function* scanRefsWith<T extends Task & { ref: string }>(
  pool: ComputePool,
  refs: readonly RefEntry[],
  options: ScanRefsOptions,
  build: (ref: string, frontier: FrontierEntry[], limit: number) => T,
): AsyncGenerator<ResultOf<T>> {
  const limit = options.batchSize ?? 2000;
  const todo: T[] = refs.map((ref) => {
    const stop = options.since?.get(ref.name);
    return build(ref.name, startFrontier([ref.oid], stop ? [stop] : []), limit);
  });
  const active = new Map<number, Promise<{ id: number; result: ResultOf<T> }>>();
  let nextId = 0;
  const start = (task: T): void => {
    const id = nextId++;
    active.set(
      id,
      pool.run(task).then((result) => ({ id, result })),
    );
  };
  try {
    for (;;) {
      while (active.size < pool.maxInFlight && todo.length > 0) start(todo.shift() as T);
      if (active.size === 0) return;
      const { id, result } = await Promise.race(active.values());
      active.delete(id);
      const step = result as unknown as { ref: string; frontier: FrontierEntry[] };
      if (step.frontier.length > 0) todo.unshift(build(step.ref, step.frontier, limit));
      yield result;
    }
  } finally {
    // On early exit or error, let outstanding tasks settle so no rejection goes unhandled.
    await Promise.allSettled(active.values());
  }
}

const decoder = new TextDecoder();

/** Decodes a batch's rows (kept encoded until a consumer needs them). */
export function decodeRows(batch: ScanResult): ScanRow[] {
  return JSON.parse(decoder.decode(batch.rows)) as ScanRow[];
}
