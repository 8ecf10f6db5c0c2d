/**
 * Pack index v2 (`.idx`): a 256-entry fan-out table, sorted object ids, CRC-32s, 31-bit offsets
 * with an overflow table of 64-bit offsets, then the pack checksum and the index checksum.
 * Lookups binary-search the slice the fan-out selects.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { GatosError } from '../errors.js';

const MAGIC = 0xff744f63; // "\377tOc"
const HEADER = 8;
const FANOUT = 256 * 4;

/**
 * An index file and its search table in shared memory. Every thread of a process that opens
 * the same index (worker threads of an export, say) can use one copy instead of its own: at 4M
 * objects that is ~128 MB per thread. Pack files are immutable once named, so the path is the key.
 */
export interface SharedIndex {
  readonly data: SharedArrayBuffer;
  readonly heads: SharedArrayBuffer;
  /** The file's modification time when read: a rewritten file (damage, tests) is read again. */
  readonly mtimeMs: number;
}

/** Indexes this thread opened or adopted, by path; dropped when no PackIndex uses them. */
const sharedIndexes = new Map<string, WeakRef<SharedIndex>>();
const forget = new FinalizationRegistry<string>((path) => {
  if (sharedIndexes.get(path)?.deref() === undefined) sharedIndexes.delete(path);
});

function remember(path: string, shared: SharedIndex): void {
  sharedIndexes.set(path, new WeakRef(shared));
  forget.register(shared, path);
}

/** The shared indexes this thread holds under a directory (to hand to worker threads). */
export function sharedIndexesUnder(dir: string): Record<string, SharedIndex> {
  const found: Record<string, SharedIndex> = {};
  for (const [path, ref] of sharedIndexes) {
    const shared = ref.deref();
    if (shared && path.startsWith(dir)) found[path] = shared;
  }
  return found;
}

/** Makes indexes loaded by another thread available to `PackIndex.open` in this one. */
export function adoptSharedIndexes(indexes: Record<string, SharedIndex>): void {
  for (const [path, shared] of Object.entries(indexes)) if (!sharedIndexes.get(path)?.deref()) remember(path, shared);
}

function readShared(path: string): { data: SharedArrayBuffer; mtimeMs: number } {
  const fd = openSync(path, 'r');
  try {
    const { size, mtimeMs } = fstatSync(fd);
    const shared = new SharedArrayBuffer(size);
    const view = Buffer.from(shared);
    for (let at = 0; at < size; ) {
      const got = readSync(fd, view, at, size - at, at);
      if (got === 0) break;
      at += got;
    }
    return { data: shared, mtimeMs };
  } finally {
    closeSync(fd);
  }
}

export class PackIndex {
  readonly count: number;
  /** The SHA-1 of the pack this index describes (its last 20 bytes). */
  readonly packChecksum: Buffer;
  private readonly data: Buffer;
  private readonly oidsAt: number;
  private readonly offsetsAt: number;
  private readonly largeOffsetsAt: number;
  /** The first four bytes of every id as a big-endian integer: binary search runs on this. */
  private readonly heads: Uint32Array;
  /** The shared memory behind this index (kept alive, with its registry entry, while in use). */
  readonly shared: SharedIndex | undefined;

  /** `data` over `shared.data` when given; `shared.heads` is reused when complete, else built. */
  constructor(
    data: Buffer,
    readonly path: string,
    shared?: { data: SharedArrayBuffer; heads?: SharedArrayBuffer; mtimeMs: number },
  ) {
    const corrupt = (detail: string) => new GatosError('corrupt_pack', `pack index ${path}: ${detail}`, { path });
    if (data.length < HEADER + FANOUT + 40 || data.readUInt32BE(0) !== MAGIC) throw corrupt('not a version 2 index');
    if (data.readUInt32BE(4) !== 2) throw corrupt(`unsupported version ${data.readUInt32BE(4)}`);
    this.data = data;
    this.count = data.readUInt32BE(HEADER + 255 * 4);
    this.oidsAt = HEADER + FANOUT;
    this.offsetsAt = this.oidsAt + this.count * 24; // 20-byte ids, then 4-byte CRCs
    this.largeOffsetsAt = this.offsetsAt + this.count * 4;
    if (this.largeOffsetsAt + 40 > data.length) throw corrupt('truncated');
    this.packChecksum = data.subarray(data.length - 40, data.length - 20);
    if (shared?.heads?.byteLength === this.count * 4) {
      this.heads = new Uint32Array(shared.heads);
      this.shared = shared as SharedIndex;
    } else {
      this.heads = new Uint32Array(shared ? new SharedArrayBuffer(this.count * 4) : new ArrayBuffer(this.count * 4));
      for (let i = 0; i < this.count; i++) this.heads[i] = data.readUInt32BE(this.oidsAt + i * 20);
      this.shared = shared ? { data: shared.data, heads: this.heads.buffer as SharedArrayBuffer, mtimeMs: shared.mtimeMs } : undefined;
    }
    // The index's own SHA-1 is not recomputed on open (git does not either; `verify()` does):
    // every worker opens every index, and that hash costs more than the rest of opening.
    // The pack checksum recorded here is compared with the pack's trailer by PackFile.
  }

  /** Recomputes the index checksum (what `git verify-pack` checks); throws `corrupt_pack`. */
  verify(): void {
    const expected = createHash('sha1')
      .update(this.data.subarray(0, this.data.length - 20))
      .digest();
    if (!expected.equals(this.data.subarray(this.data.length - 20))) {
      throw new GatosError('corrupt_pack', `pack index ${this.path}: checksum mismatch`, { path: this.path });
    }
  }

  /** Opens an index in shared memory, reusing the copy of another thread when one was adopted. */
  static open(path: string): PackIndex {
    const adopted = sharedIndexes.get(path)?.deref();
    const now = adopted && statSync(path);
    if (adopted && now && adopted.data.byteLength === now.size && adopted.mtimeMs === now.mtimeMs)
      return new PackIndex(Buffer.from(adopted.data), path, adopted);
    const file = readShared(path);
    const index = new PackIndex(Buffer.from(file.data), path, file);
    remember(path, index.shared as SharedIndex);
    return index;
  }

  /** Pack offset of the object with this 20-byte id, or -1. */
  find(oid: Uint8Array): number {
    const first = oid[0] as number;
    let lo = first === 0 ? 0 : this.data.readUInt32BE(HEADER + (first - 1) * 4);
    let hi = this.data.readUInt32BE(HEADER + first * 4);
    // Compare the first four bytes as one integer; fall back to a full compare on a tie.
    const head = ((oid[0] as number) * 0x1000000 + ((oid[1] as number) << 16) + ((oid[2] as number) << 8) + (oid[3] as number)) >>> 0;
    const heads = this.heads;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const word = heads[mid] as number;
      const at = this.oidsAt + mid * 20;
      const cmp = word !== head ? (word > head ? 1 : -1) : this.compareTail(oid, at);
      if (cmp === 0) return this.offsetAt(mid);
      if (cmp > 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }

  /** Compares bytes 4..19 of the id at `at` with those of `oid` (the first four were equal). */
  private compareTail(oid: Uint8Array, at: number): number {
    const data = this.data;
    for (let i = 4; i < 20; i++) {
      const a = data[at + i] as number;
      const b = oid[i] as number;
      if (a !== b) return a > b ? 1 : -1;
    }
    return 0;
  }

  /** The id at sorted position `i` (a view into the index, not a copy). */
  rawOidAt(i: number): Buffer {
    return this.data.subarray(this.oidsAt + i * 20, this.oidsAt + i * 20 + 20);
  }

  /** The id at sorted position `i` as hex. */
  oidAt(i: number): string {
    return this.data.toString('hex', this.oidsAt + i * 20, this.oidsAt + i * 20 + 20);
  }

  offsetAt(i: number): number {
    const small = this.data.readUInt32BE(this.offsetsAt + i * 4);
    if ((small & 0x80000000) === 0) return small;
    return Number(this.data.readBigUInt64BE(this.largeOffsetsAt + (small & 0x7fffffff) * 8));
  }
}

/**
 * The index rows of a pack being written, in compact typed arrays (32 bytes per object, not an
 * object per entry), so packs of millions of objects index in bounded memory.
 */
export class IndexTable {
  count = 0;
  private oids = new Uint8Array(20 * 1024);
  private offsets = new Float64Array(1024);
  private crcs = new Uint32Array(1024);

  add(oid: Uint8Array, offset: number, crc: number): void {
    if (this.count === this.offsets.length) this.grow();
    this.oids.set(oid.subarray(0, 20), this.count * 20);
    this.offsets[this.count] = offset;
    this.crcs[this.count] = crc;
    this.count++;
  }

  private grow(): void {
    const grow = <T extends Uint8Array | Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(old.length * 2);
      next.set(old as never);
      return next;
    };
    this.oids = grow(this.oids, (n) => new Uint8Array(n));
    this.offsets = grow(this.offsets, (n) => new Float64Array(n));
    this.crcs = grow(this.crcs, (n) => new Uint32Array(n));
  }

  /** Row numbers ordered by oid: a counting sort on the first two bytes, then small sorts. */
  private sortedOrder(): Uint32Array {
    const { oids, count } = this;
    const starts = new Uint32Array(65537);
    for (let i = 0; i < count; i++) (starts[((oids[i * 20] as number) << 8) | (oids[i * 20 + 1] as number)] as number)++;
    let sum = 0;
    for (let b = 0; b < 65537; b++) {
      const n = starts[b] as number;
      starts[b] = sum;
      sum += n;
    }
    const order = new Uint32Array(count);
    const fill = starts.slice(0, 65536);
    for (let i = 0; i < count; i++) {
      const bucket = ((oids[i * 20] as number) << 8) | (oids[i * 20 + 1] as number);
      order[(fill[bucket] as number)++] = i;
    }
    const bytes = Buffer.from(oids.buffer, oids.byteOffset, count * 20);
    const compare = (a: number, b: number) => bytes.compare(bytes, b * 20 + 2, b * 20 + 20, a * 20 + 2, a * 20 + 20);
    for (let b = 0; b < 65536; b++) {
      const lo = starts[b] as number;
      const hi = starts[b + 1] as number;
      if (hi - lo > 1) order.subarray(lo, hi).set(Array.from(order.subarray(lo, hi)).sort(compare));
    }
    return order;
  }

  /** Serializes the v2 index for a pack whose checksum is `packChecksum`. */
  build(packChecksum: Uint8Array): Buffer {
    const { count } = this;
    const order = this.sortedOrder();
    let large = 0;
    for (let i = 0; i < count; i++) if ((this.offsets[i] as number) >= 0x80000000) large++;
    const size = HEADER + FANOUT + count * 28 + large * 8 + 40;
    const out = Buffer.alloc(size);
    out.writeUInt32BE(MAGIC, 0);
    out.writeUInt32BE(2, 4);
    const oidsAt = HEADER + FANOUT;
    const crcsAt = oidsAt + count * 20;
    const offsetsAt = crcsAt + count * 4;
    const largeAt = offsetsAt + count * 4;
    const fanout = new Uint32Array(256);
    let largeCount = 0;
    for (let k = 0; k < count; k++) {
      const row = order[k] as number;
      out.set(this.oids.subarray(row * 20, row * 20 + 20), oidsAt + k * 20);
      (fanout[this.oids[row * 20] as number] as number)++;
      out.writeUInt32BE(this.crcs[row] as number, crcsAt + k * 4);
      const offset = this.offsets[row] as number;
      if (offset < 0x80000000) {
        out.writeUInt32BE(offset, offsetsAt + k * 4);
      } else {
        out.writeUInt32BE((0x80000000 | largeCount) >>> 0, offsetsAt + k * 4);
        out.writeBigUInt64BE(BigInt(offset), largeAt + largeCount * 8);
        largeCount++;
      }
    }
    let running = 0;
    for (let byte = 0; byte < 256; byte++) {
      running += fanout[byte] as number;
      out.writeUInt32BE(running, HEADER + byte * 4);
    }
    out.set(packChecksum.subarray(0, 20), size - 40);
    createHash('sha1')
      .update(out.subarray(0, size - 20))
      .digest()
      .copy(out, size - 20);
    return out;
  }
}
