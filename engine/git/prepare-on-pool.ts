/**
 * Compression of many objects on the worker pool. Ids are computed where the objects are built
 * (a commit chain needs them in order); compression does not change them, so it can run on
 * other threads while building goes on, and the writer appends the prepared objects to one
 * pack in input order.
 *
 * @example
 *   const preparer = new PoolPreparer(pool);
 *   for (const object of built) await preparer.add(object);
 *   bus.objects.writeMany(await preparer.finish());
 */
import type { ComputePool } from '../scheduler/pool.js';
import { packRawObjects, unpackPrepared } from './pack-writer.js';
import type { GitObject, PreparedObject } from './ports.js';

/** Objects per task: large enough to amortize the hand-off, small enough to spread over threads. */
const CHUNK = 2048;

export class PoolPreparer {
  private readonly chunks: Array<Promise<PreparedObject[]>> = [];
  private pending: GitObject[] = [];

  constructor(
    private readonly pool: ComputePool,
    private readonly level = 1,
  ) {}

  /**
   * Queues objects; each full chunk goes to the pool, and the caller is paused for one turn of
   * the event loop so the hand-off happens while it builds the next chunk.
   */
  async add(...objects: GitObject[]): Promise<void> {
    this.pending.push(...objects);
    if (this.pending.length < CHUNK) return;
    this.dispatch();
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** The prepared objects, in the order they were added. */
  async finish(): Promise<PreparedObject[]> {
    if (this.pending.length > 0) this.dispatch();
    return (await Promise.all(this.chunks)).flat();
  }

  private dispatch(): void {
    const packed = packRawObjects(this.pending);
    this.pending = [];
    const done = this.pool.run({ kind: 'prepare-objects', objects: packed, level: this.level }, [packed.buffer as ArrayBuffer]);
    const prepared = done.then((result) => [...unpackPrepared(result.objects)]);
    prepared.catch(() => {}); // raised by finish(), not as an unhandled rejection meanwhile
    this.chunks.push(prepared);
  }
}
