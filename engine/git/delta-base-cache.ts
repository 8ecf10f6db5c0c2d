/**
 * Delta bases of one pack, kept so that reading along a delta chain does not start from its far
 * end every time. The objects are copied into one ring buffer (first in, first out) and indexed
 * by pack offset, so the cache holds no JavaScript object per entry: a cache of many small
 * objects as a Map of objects kept the garbage collector busy moving them to the old generation
 * and back (1M events of a repacked pack: 52 s with such a cache, 24 s with none). What `get`
 * returns is a copy, so the ring can overwrite its bytes later.
 *
 * Record layout in the ring: pack offset (float64), body length (uint32), type code (uint8),
 * 3 bytes of padding, then the body; records start on 8-byte boundaries.
 */
import type { GitObject, ObjectType } from './ports.js';

const HEADER = 16;
const TYPES: readonly ObjectType[] = ['commit', 'tree', 'blob', 'tag'];

const recordSize = (bodyLength: number): number => (HEADER + bodyLength + 7) & ~7;

export class DeltaBaseCache {
  /** Allocated on the first `set`: packs without deltas never need one. */
  private ring: Buffer | undefined;
  /** Pack offset -> position of its record in the ring. */
  private readonly where = new Map<number, number>();
  /** Where the next record goes, and where the oldest live one starts. */
  private head = 0;
  private tail = 0;
  /** Whether the live records run from `tail` to `lapEnd` and then from 0 to `head`. */
  private wrapped = false;
  private lapEnd = 0;

  constructor(private readonly maxBytes: number) {}

  get(offset: number): GitObject | undefined {
    const at = this.where.get(offset);
    if (at === undefined) return undefined;
    const ring = this.ring as Buffer;
    const length = ring.readUInt32LE(at + 8);
    return {
      type: TYPES[(ring[at + 12] as number) - 1] as ObjectType,
      body: Uint8Array.prototype.slice.call(ring, at + HEADER, at + HEADER + length),
    };
  }

  set(offset: number, object: GitObject): void {
    const size = recordSize(object.body.length);
    if (size > this.maxBytes / 4 || this.where.has(offset)) return;
    this.ring ??= Buffer.allocUnsafe(this.maxBytes);
    const at = this.makeRoom(size);
    const ring = this.ring;
    ring.writeDoubleLE(offset, at);
    ring.writeUInt32LE(object.body.length, at + 8);
    ring[at + 12] = TYPES.indexOf(object.type) + 1;
    ring.set(object.body, at + HEADER);
    this.where.set(offset, at);
    this.head = at + size;
  }

  /** Evicts the oldest records until `size` bytes are free at `head` (wrapping to 0 when needed); returns where to write. */
  private makeRoom(size: number): number {
    const ring = this.ring as Buffer;
    for (;;) {
      if (!this.wrapped) {
        // Live records are [tail, head): room is after head, else start a new lap at 0.
        if (this.head + size <= ring.length) return this.head;
        this.lapEnd = this.head;
        this.head = 0;
        this.wrapped = true;
        continue;
      }
      // Live records are [tail, lapEnd) and [0, head): room is between head and tail.
      if (this.head + size <= this.tail) return this.head;
      this.evictOldest();
    }
  }

  private evictOldest(): void {
    const ring = this.ring as Buffer;
    const offset = ring.readDoubleLE(this.tail);
    if (this.where.get(offset) === this.tail) this.where.delete(offset);
    this.tail += recordSize(ring.readUInt32LE(this.tail + 8));
    if (this.tail >= this.lapEnd) {
      // The previous lap is gone: the live records are [0, head) now.
      this.tail = 0;
      this.wrapped = false;
    }
  }
}
