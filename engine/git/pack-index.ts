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
 * Indexes of more objects than this are kept compact: 8 bytes per object in memory (the first
 * four bytes of each id and its offset) instead of the whole file's 32, with the other 16 bytes
 * of an id read from the file when a lookup reaches it (one positioned read per hit). At 4M
 * objects that is 32 MB instead of 128 MB; below a million, a whole index is at most 32 MB and
 * lookups skip the read.
 */
export const COMPACT_INDEX_ABOVE = 1 << 20;

/**
 * An index file's search tables in shared memory. Every thread of a process that opens the same
 * index (worker threads of an export, say) uses one copy instead of its own. Pack files are
 * immutable once named, so the path is the key.
 */
export interface SharedIndex {
  /** The whole file (indexes of up to COMPACT_INDEX_ABOVE objects). */
  readonly data?: SharedArrayBuffer;
  /** The first four bytes of every id as big-endian integers: binary search runs on these. */
  readonly heads: SharedArrayBuffer;
  /** Compact indexes: the 4-byte offset table entries, as integers. */
  readonly offsets?: SharedArrayBuffer;
  /** The file's size and modification time when read: a rewritten file (damage, tests) is read again. */
  readonly size: number;
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

/** Fills `into` from the file at `position` (short only at the end of the file). */
function readFully(fd: number, into: Uint8Array, position: number): number {
  let at = 0;
  while (at < into.length) {
    const got = readSync(fd, into, at, into.length - at, position + at);
    if (got === 0) break;
    at += got;
  }
  return at;
}

/** Where the tables of a v2 index of `count` objects start. */
function layout(count: number) {
  const oidsAt = HEADER + FANOUT;
  const offsetsAt = oidsAt + count * 24; // 20-byte ids, then 4-byte CRCs
  return { oidsAt, offsetsAt, largeOffsetsAt: offsetsAt + count * 4 };
}

/** Checks the header of an index file of `size` bytes; returns its object count. */
function checkHeader(header: Buffer, size: number, path: string): number {
  const corrupt = (detail: string) => new GatosError('corrupt_pack', `pack index ${path}: ${detail}`, { path });
  if (size < HEADER + FANOUT + 40 || header.length < HEADER + FANOUT || header.readUInt32BE(0) !== MAGIC)
    throw corrupt('not a version 2 index');
  if (header.readUInt32BE(4) !== 2) throw corrupt(`unsupported version ${header.readUInt32BE(4)}`);
  const count = header.readUInt32BE(HEADER + 255 * 4);
  if (layout(count).largeOffsetsAt + 40 > size) throw corrupt('truncated');
  return count;
}

/**
 * The first four bytes (big-endian) of `rows` rows of `width` bytes from `bytes[at]` on, into
 * `into[first]` on. This loop runs once per object at every start, before anything is
 * optimized, so `headOf`'s arithmetic is written out: `Buffer.readUInt32BE` cost ~9 ms at 400k
 * objects against ~2 ms, and a call to `headOf` per row another ~3 ms.
 */
function firstWordsOf(bytes: Uint8Array, at: number, width: number, into: Uint32Array, first: number, rows: number): void {
  for (let i = 0, p = at; i < rows; i++, p += width)
    into[first + i] =
      (((bytes[p] as number) << 24) | ((bytes[p + 1] as number) << 16) | ((bytes[p + 2] as number) << 8) | (bytes[p + 3] as number)) >>> 0;
}

/** Reads an index into shared memory: whole, or only its heads and offsets when it is large. */
function load(path: string, compactAbove: number): SharedIndex {
  const fd = openSync(path, 'r');
  try {
    const { size, mtimeMs } = fstatSync(fd);
    const header = Buffer.alloc(Math.min(size, HEADER + FANOUT));
    readFully(fd, header, 0);
    const count = checkHeader(header, size, path);
    const { oidsAt, offsetsAt } = layout(count);
    const heads = new Uint32Array(new SharedArrayBuffer(count * 4));
    if (count <= compactAbove) {
      const data = new SharedArrayBuffer(size);
      const bytes = Buffer.from(data);
      readFully(fd, bytes, 0);
      firstWordsOf(bytes, oidsAt, 20, heads, 0, count);
      return { data, heads: heads.buffer as SharedArrayBuffer, size, mtimeMs };
    }
    const offsets = new Uint32Array(new SharedArrayBuffer(count * 4));
    // Streamed in chunks of whole rows, so loading never holds the file.
    const chunk = Buffer.alloc(20 * 65536);
    const firstWords = (into: Uint32Array, at: number, width: number) => {
      for (let first = 0; first < count; first += 65536) {
        const rows = Math.min(65536, count - first);
        readFully(fd, chunk.subarray(0, rows * width), at + first * width);
        firstWordsOf(chunk, 0, width, into, first, rows);
      }
    };
    firstWords(heads, oidsAt, 20);
    firstWords(offsets, offsetsAt, 4);
    return { heads: heads.buffer as SharedArrayBuffer, offsets: offsets.buffer as SharedArrayBuffer, size, mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** The first four bytes of an id (or the four at `at`, as in the offset table) as a big-endian integer. */
function headOf(oid: Uint8Array, at = 0): number {
  return (
    ((oid[at] as number) * 0x1000000 + ((oid[at + 1] as number) << 16) + ((oid[at + 2] as number) << 8) + (oid[at + 3] as number)) >>> 0
  );
}

export class PackIndex {
  readonly count: number;
  /** The SHA-1 of the pack this index describes. */
  readonly packChecksum: Buffer;
  /** The shared memory behind this index (kept alive, with its registry entry, while in use). */
  readonly shared: SharedIndex;
  /** Cumulative object counts by first id byte. */
  private readonly fanout: Uint32Array;
  private readonly heads: Uint32Array;
  /** The whole file, or (compact) undefined. */
  private readonly data: Buffer | undefined;
  /** Compact: the offset table, and the file the id tails are read from. */
  private readonly offsets: Uint32Array | undefined;
  private fd: number | undefined;
  private readonly tail = Buffer.alloc(20);
  /** The 64-bit offsets of entries past 2 GiB. */
  private readonly largeOffsets: Buffer;
  private readonly oidsAt: number;
  private readonly offsetsAt: number;

  private constructor(
    readonly path: string,
    shared: SharedIndex,
  ) {
    this.shared = shared;
    this.heads = new Uint32Array(shared.heads);
    this.count = this.heads.length;
    const { oidsAt, offsetsAt, largeOffsetsAt } = layout(this.count);
    this.oidsAt = oidsAt;
    this.offsetsAt = offsetsAt;
    let header: Buffer;
    let trailer: Buffer;
    if (shared.data) {
      this.data = Buffer.from(shared.data);
      header = this.data;
      trailer = this.data.subarray(shared.size - 40);
      this.largeOffsets = this.data.subarray(largeOffsetsAt, shared.size - 40);
    } else {
      this.offsets = new Uint32Array(shared.offsets as SharedArrayBuffer);
      this.fd = openSync(path, 'r');
      header = Buffer.alloc(HEADER + FANOUT);
      readFully(this.fd, header, 0);
      const rest = Buffer.alloc(shared.size - largeOffsetsAt);
      readFully(this.fd, rest, largeOffsetsAt);
      trailer = rest.subarray(rest.length - 40);
      this.largeOffsets = rest.subarray(0, rest.length - 40);
    }
    this.fanout = new Uint32Array(256);
    for (let byte = 0; byte < 256; byte++) this.fanout[byte] = header.readUInt32BE(HEADER + byte * 4);
    this.packChecksum = Buffer.from(trailer.subarray(0, 20));
    // The index's own SHA-1 is not recomputed on open (git does not either; `verify()` does):
    // every worker opens every index, and that hash costs more than the rest of opening.
    // The pack checksum recorded here is compared with the pack's trailer by PackFile.
  }

  /**
   * Opens an index in shared memory, reusing the copy of another thread when one was adopted.
   * `compactAbove`: object count above which only heads and offsets are held (tests lower it).
   */
  static open(path: string, options: { compactAbove?: number } = {}): PackIndex {
    const compactAbove = options.compactAbove ?? COMPACT_INDEX_ABOVE;
    const adopted = sharedIndexes.get(path)?.deref();
    if (adopted) {
      // Reused when the file is unchanged and held in the form asked for.
      const now = statSync(path);
      const compact = adopted.heads.byteLength / 4 > compactAbove;
      if ((adopted.data === undefined) === compact && adopted.size === now.size && adopted.mtimeMs === now.mtimeMs)
        return new PackIndex(path, adopted);
    }
    const shared = load(path, compactAbove);
    remember(path, shared);
    return new PackIndex(path, shared);
  }

  /** Whether only heads and offsets are in memory. */
  get compact(): boolean {
    return this.data === undefined;
  }

  /** Releases the file a compact index reads id tails from. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Recomputes the index checksum (what `git verify-pack` checks); throws `corrupt_pack`. */
  verify(): void {
    const hash = createHash('sha1');
    const stored = Buffer.alloc(20);
    if (this.data) {
      hash.update(this.data.subarray(0, this.data.length - 20));
      this.data.copy(stored, 0, this.data.length - 20);
    } else {
      const fd = this.file();
      const chunk = Buffer.alloc(1 << 20);
      const end = this.shared.size - 20;
      for (let at = 0; at < end; ) {
        const got = readFully(fd, chunk.subarray(0, Math.min(chunk.length, end - at)), at);
        if (got === 0) break;
        hash.update(chunk.subarray(0, got));
        at += got;
      }
      readFully(fd, stored, end);
    }
    if (!hash.digest().equals(stored)) {
      throw new GatosError('corrupt_pack', `pack index ${this.path}: checksum mismatch`, { path: this.path });
    }
  }

  private file(): number {
    if (this.fd === undefined) this.fd = openSync(this.path, 'r');
    return this.fd;
  }

  /** Pack offset of the object with this 20-byte id, or -1 (compact: one file read per candidate). */
  find(oid: Uint8Array): number {
    // Rows sharing the head (rarely more than one) are told apart by the rest of the id.
    for (let i = this.firstWithHead(oid); i !== -1 && this.hasHead(i, oid); i++) {
      const cmp = this.compareTail(oid, i);
      if (cmp === 0) return this.offsetAt(i);
      if (cmp > 0) break;
    }
    return -1;
  }

  /**
   * The first row whose id starts with the same four bytes as `oid`, or -1: a binary search on
   * those bytes as one integer. Later rows are candidates too while `hasHead` holds.
   */
  firstWithHead(oid: Uint8Array): number {
    const first = oid[0] as number;
    let lo = first === 0 ? 0 : (this.fanout[first - 1] as number);
    let hi = this.fanout[first] as number;
    const head = headOf(oid);
    const heads = this.heads;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((heads[mid] as number) < head) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.count && heads[lo] === head ? lo : -1;
  }

  /** Whether the id at row `i` starts with the same four bytes as `oid`. */
  hasHead(i: number, oid: Uint8Array): boolean {
    return i < this.count && this.heads[i] === headOf(oid);
  }

  /**
   * Compares bytes 4..19 of the id at row `i` with those of `oid` (the first four were equal):
   * negative, 0 or positive. The difference is taken on every byte, not only where they differ,
   * so the branch for two ids sharing a head (a few in 100k) holds nothing V8 has not seen run:
   * code reached for the first time once optimized is dropped and compiled again.
   */
  private compareTail(oid: Uint8Array, i: number): number {
    let data: Uint8Array;
    let at: number;
    if (this.data) {
      data = this.data;
      at = this.oidsAt + i * 20;
    } else {
      data = this.tail;
      readFully(this.file(), this.tail.subarray(4, 20), this.oidsAt + i * 20 + 4);
      at = 0;
    }
    for (let k = 4; k < 20; k++) {
      const difference = (data[at + k] as number) - (oid[k] as number);
      if (difference !== 0) return difference;
    }
    return 0;
  }

  /** The id at sorted position `i` (a view into a whole index, a copy from a compact one's file). */
  rawOidAt(i: number): Buffer {
    if (this.data) return this.data.subarray(this.oidsAt + i * 20, this.oidsAt + i * 20 + 20);
    const oid = Buffer.alloc(20);
    readFully(this.file(), oid, this.oidsAt + i * 20);
    return oid;
  }

  /** The id at sorted position `i` as hex. */
  oidAt(i: number): string {
    return this.rawOidAt(i).toString('hex');
  }

  offsetAt(i: number): number {
    // By `headOf`: `readUInt32BE` is a call V8 does not inline here (~35 ms per thread of a
    // 100k-event export).
    const small = this.offsets ? (this.offsets[i] as number) : headOf(this.data as Buffer, this.offsetsAt + i * 4);
    if ((small & 0x80000000) === 0) return small;
    return Number(this.largeOffsets.readBigUInt64BE((small & 0x7fffffff) * 8));
  }
}

/**
 * Where an id goes in `IndexTable`'s slots: its first and last four bytes mixed, so ids made to
 * share a prefix (cheap to search for, 2^32 tries) still spread.
 */
function slotKey(bytes: Uint8Array, at: number): number {
  return headOf(bytes, at) ^ headOf(bytes, at + 16);
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
  /**
   * With `findable`: the rows by id, open addressing on `slotKey` (row + 1; 0 is
   * empty), kept at most half full. 4-8 bytes per object, where a Set of id strings took ~60 and
   * hashed every string (2-3% of a batch publish).
   */
  private slots: Int32Array | undefined;

  constructor(findable = false) {
    if (findable) this.slots = new Int32Array(2048);
  }

  add(oid: Uint8Array, offset: number, crc: number): void {
    if (this.count === this.offsets.length) this.grow();
    this.oids.set(oid.subarray(0, 20), this.count * 20);
    this.offsets[this.count] = offset;
    this.crcs[this.count] = crc;
    this.count++;
    if (!this.slots) return;
    if (this.count * 2 > this.slots.length) this.slots = this.rehash(this.slots.length * 2);
    this.place(this.slots, this.count - 1);
  }

  /** Whether `has` can be asked (the table was made findable). */
  get findable(): boolean {
    return this.slots !== undefined;
  }

  /** Whether a row has this id (a table made `findable`). */
  has(oid: Uint8Array): boolean {
    const slots = this.slots as Int32Array;
    const mask = slots.length - 1;
    for (let slot = slotKey(oid, 0) & mask; ; slot = (slot + 1) & mask) {
      const row = slots[slot] as number;
      if (row === 0) return false;
      if (this.rowIs(row - 1, oid)) return true;
    }
  }

  private rowIs(row: number, oid: Uint8Array): boolean {
    const at = row * 20;
    for (let k = 0; k < 20; k++) if (this.oids[at + k] !== oid[k]) return false;
    return true;
  }

  private place(slots: Int32Array, row: number): void {
    const mask = slots.length - 1;
    let slot = slotKey(this.oids, row * 20) & mask;
    while (slots[slot] !== 0) slot = (slot + 1) & mask;
    slots[slot] = row + 1;
  }

  private rehash(size: number): Int32Array {
    const slots = new Int32Array(size);
    for (let row = 0; row < this.count; row++) this.place(slots, row);
    return slots;
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
