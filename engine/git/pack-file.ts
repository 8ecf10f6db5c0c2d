/**
 * Reads objects from one packfile through its v2 index. The file is read through a small LRU of
 * fixed-size windows (positioned reads, so memory stays bounded whatever the pack size, and a
 * scan touching neighbouring objects costs one syscall per window, not per object), or entry by
 * entry when reads jump around too much for windows to pay. Entries are
 * inflated with node:zlib; OFS_DELTA / REF_DELTA chains are resolved iteratively with a
 * byte-bounded cache of delta bases (delta-base-cache.ts).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { GatosError } from '../errors.js';
import { applyDelta } from './delta.js';
import { DeltaBaseCache } from './delta-base-cache.js';
import { hashObjectRaw } from './oid.js';
import { PackIndex } from './pack-index.js';
import type { GitObject, ObjectType } from './ports.js';
import { inflateSmall, SMALL_INFLATE_LIMIT } from './small-inflate.js';
import { inflateStored } from './zlib-stored.js';

const TYPE_BY_CODE: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };
const OFS_DELTA = 6;
const REF_DELTA = 7;
const HEAD_READ = 4096;
const WINDOW_BYTES = 1 << 20;
const WINDOW_SLACK = 64 << 10; // windows overlap so entries crossing a boundary are usually whole
const MAX_WINDOWS = 4;
/**
 * Loading a window copies ~1 MiB (~40 µs), a direct read costs one syscall (~1-2 µs). A window
 * pays when the reads right after its load keep landing in it: when fewer than MIN_WINDOW_YIELD
 * of the EARLY_READS reads that follow a load do (averaged over recent loads), reads go direct.
 * Only those reads count, so a window that lingers in the cache (as probes do while reads go
 * direct) does not look useful just because it stayed long.
 */
const EARLY_READS = 256;
const MIN_WINDOW_YIELD = 32;
const PROBE_EVERY = 1024;
/** What a direct first read of an entry takes: header and data of most commits, trees and small blobs. */
const DIRECT_READ = 512;
/**
 * Delta bases kept per pack and thread. GATOS objects are small (commits, trees, envelopes), so
 * 8 MiB holds tens of thousands of them: a `gc --aggressive` history (chains to depth 49) reads
 * as fast as with 32 MiB, and a repacked 1M-event export on two threads peaks ~65 MiB lower.
 */
const DELTA_BASE_CACHE_BYTES = 8 << 20;

interface RawEntry {
  code: number;
  /** Inflated data: the object body, or the delta instructions. */
  data: Uint8Array;
  baseOffset: number | undefined;
  baseOid: Buffer | undefined;
}

export class PackFile {
  private readonly fd: number;
  private readonly dataEnd: number;
  private readonly cache: DeltaBaseCache;
  /** Windows by start offset, least recently used first; `early`: reads served among the EARLY_READS after loading. */
  private readonly windows = new Map<number, { memory: Buffer; bytes: Buffer; loadedAt: number; early: number }>();
  /** `early` of loaded windows, averaged; starts optimistic. */
  private windowYield = EARLY_READS;
  /** The last window loaded, while its early reads are being counted. */
  private newest: { loadedAt: number; early: number } | undefined;
  private directMisses = 0;
  private reads = 0;
  /** How the file has been read so far: windows loaded, entries read on their own. */
  readonly reading = { windowLoads: 0, directReads: 0 };

  private constructor(
    readonly packPath: string,
    readonly index: PackIndex,
    cacheBytes: number,
  ) {
    this.cache = new DeltaBaseCache(cacheBytes);
    try {
      this.fd = openSync(packPath, 'r');
    } catch (err) {
      index.close();
      throw err;
    }
    try {
      this.dataEnd = this.checkFraming();
    } catch (err) {
      closeSync(this.fd);
      index.close();
      throw err;
    }
  }

  /** Opens `<name>.pack` beside `<name>.idx`; `corrupt_pack` when the pair does not match. */
  static open(idxPath: string, options: { cacheBytes?: number; compactIndexAbove?: number } = {}): PackFile {
    const index = PackIndex.open(idxPath, options.compactIndexAbove === undefined ? {} : { compactAbove: options.compactIndexAbove });
    const cacheBytes = options.cacheBytes ?? DELTA_BASE_CACHE_BYTES;
    return new PackFile(idxPath.replace(/\.idx$/, '.pack'), index, cacheBytes);
  }

  private corrupt(detail: string): GatosError {
    return new GatosError('corrupt_pack', `pack ${this.packPath}: ${detail}`, { path: this.packPath });
  }

  /** Checks header and trailer against the index; returns where entry data ends. */
  private checkFraming(): number {
    const size = fstatSync(this.fd).size;
    if (size < 32) throw this.corrupt('truncated');
    const head = Buffer.alloc(12);
    readSync(this.fd, head, 0, 12, 0);
    if (head.toString('latin1', 0, 4) !== 'PACK') throw this.corrupt('bad signature');
    const version = head.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw this.corrupt(`unsupported version ${version}`);
    if (head.readUInt32BE(8) !== this.index.count) throw this.corrupt('object count differs from its index');
    const trailer = Buffer.alloc(20);
    readSync(this.fd, trailer, 0, 20, size - 20);
    if (!trailer.equals(this.index.packChecksum)) throw this.corrupt('checksum differs from its index (truncated or replaced)');
    return size - 20;
  }

  close(): void {
    closeSync(this.fd);
    this.index.close();
  }

  /**
   * Reads the object with this 20-byte id, or undefined when this pack lacks it. `transient`: the
   * body may be a view of a read window, valid until the next read (`ObjectStore.readTransient`).
   */
  read(oid: Uint8Array, external?: (oid: Buffer) => GitObject | undefined, transient = false): GitObject | undefined {
    const index = this.index;
    if (!index.compact) {
      const offset = index.find(oid);
      return offset === -1 ? undefined : this.readAt(offset, external, transient);
    }
    // A compact index holds four bytes of each id: the object a candidate row points at is
    // confirmed by its hash, which costs less than reading the rest of the id from the file.
    for (let row = index.firstWithHead(oid); row !== -1 && index.hasHead(row, oid); row++) {
      const object = this.readAt(index.offsetAt(row), external, transient);
      if (hashObjectRaw(object.type, object.body).equals(oid)) return object;
    }
    return undefined;
  }

  /**
   * Where the entry of this id starts, or -1 when this pack lacks it; a hint for ordering reads
   * (a compact index may name an entry of another object sharing the id's first bytes).
   */
  offsetOf(oid: Uint8Array): number {
    const index = this.index;
    if (!index.compact) return index.find(oid);
    const row = index.firstWithHead(oid);
    return row !== -1 && index.hasHead(row, oid) ? index.offsetAt(row) : -1;
  }

  /** Reads the object whose entry starts at `offset`, resolving delta chains; `transient` as for `read`. */
  readAt(offset: number, external?: (oid: Buffer) => GitObject | undefined, transient = false): GitObject {
    const deltas: Array<{ offset: number; data: Uint8Array }> = [];
    let base: GitObject | undefined;
    let cursor = offset;
    for (;;) {
      const cached = deltas.length > 0 ? this.cache.get(cursor) : undefined;
      if (cached) {
        base = cached;
        break;
      }
      // Only an object read whole may stay a view: delta data and bases outlive later reads.
      const entry = this.readEntry(cursor, transient && deltas.length === 0);
      const type = TYPE_BY_CODE[entry.code];
      if (type) {
        base = { type, body: entry.data };
        if (deltas.length > 0) this.cache.set(cursor, base);
        break;
      }
      deltas.push({ offset: cursor, data: entry.data });
      if (deltas.length > 10_000) throw this.corrupt('delta chain is too deep or cyclic');
      if (entry.baseOffset !== undefined) {
        cursor = entry.baseOffset;
        continue;
      }
      const baseOid = entry.baseOid as Buffer;
      const inPack = this.index.find(baseOid);
      if (inPack !== -1) {
        cursor = inPack;
        continue;
      }
      base = external?.(baseOid);
      if (!base) throw this.corrupt(`delta base ${baseOid.toString('hex')} is missing`);
      break;
    }
    for (let i = deltas.length - 1; i >= 0; i--) {
      const delta = deltas[i] as { offset: number; data: Uint8Array };
      base = { type: base.type, body: applyDelta(base.body, delta.data) };
      if (i > 0) this.cache.set(delta.offset, base);
    }
    return base;
  }

  /**
   * Up to `length` bytes at `position` (fewer at the end of the data): from a cached window while
   * windows pay for themselves, else by a read of just those bytes. A pack written in walk order
   * (ours, a fresh clone's) serves thousands of entries per window; one repacked by `git gc`
   * groups objects by type and age, so a walk jumps between regions and a 1 MiB window would be
   * read for one or two entries (100k events: 26 s spent copying windows, under 1 s reading
   * entries on their own).
   */
  private readBytes(position: number, length: number): Buffer {
    const want = Math.min(length, this.dataEnd - position);
    if (want <= 0) throw this.corrupt(`entry offset ${position} is past the end`);
    const start = position - (position % WINDOW_BYTES);
    if (position + want <= start + WINDOW_BYTES + WINDOW_SLACK) {
      const window = this.window(start);
      if (window) return window.subarray(position - start, Math.min(window.length, position - start + want));
    }
    // Read directly: a first look at an entry (HEAD_READ) takes only what small entries need;
    // readEntry asks again with the size it then knows when that was too little.
    const direct = length === HEAD_READ ? Math.min(want, DIRECT_READ) : want;
    this.reading.directReads++;
    const buffer = Buffer.allocUnsafe(direct);
    const got = readSync(this.fd, buffer, 0, direct, position);
    return buffer.subarray(0, got);
  }

  /** The window at `start`, loaded if windows are worth it now; undefined to read directly. */
  private window(start: number): Buffer | undefined {
    const reads = ++this.reads;
    const newest = this.newest;
    if (newest && reads - newest.loadedAt > EARLY_READS) this.judge(newest);
    const hit = this.windows.get(start);
    if (hit) {
      if (reads - hit.loadedAt <= EARLY_READS) hit.early++;
      this.windows.delete(start);
      this.windows.set(start, hit);
      return hit.bytes;
    }
    // While windows serve too few reads, most misses read directly; one in PROBE_EVERY still
    // loads a window, so a return to neighbouring reads is noticed.
    if (this.windowYield < MIN_WINDOW_YIELD && ++this.directMisses < PROBE_EVERY) return undefined;
    this.directMisses = 0;
    if (newest) this.judge(newest); // replaced before its early reads were all counted
    const size = Math.min(WINDOW_BYTES + WINDOW_SLACK, this.dataEnd - start);
    // The least recently used window's memory is read into again (nothing read from a window
    // outlives the read: `inflate` copies what it would hand out as a view): a fresh 1 MiB per
    // load would count as external memory and start V8's full collections every few loads.
    let memory: Buffer | undefined;
    if (this.windows.size >= MAX_WINDOWS) {
      const oldest = this.windows.keys().next().value as number;
      memory = this.windows.get(oldest)?.memory;
      this.windows.delete(oldest);
    }
    if (!memory || memory.length < size) memory = Buffer.allocUnsafeSlow(size);
    const got = readSync(this.fd, memory, 0, size, start);
    const window = { memory, bytes: memory.subarray(0, got), loadedAt: reads, early: 1 };
    this.reading.windowLoads++;
    this.windows.set(start, window);
    this.newest = window;
    return window.bytes;
  }

  /** Folds how many of the reads after its load the newest window served into the average. */
  private judge(window: { early: number }): void {
    this.windowYield += (window.early - this.windowYield) / 4;
    this.newest = undefined;
  }

  /** `viewIfWhole`: the entry's body may stay a view of the window when it is a whole object (not a delta). */
  private readEntry(offset: number, viewIfWhole = false): RawEntry {
    let chunk = this.readBytes(offset, HEAD_READ);
    let pos = 0;
    const next = (): number => {
      if (pos >= chunk.length) throw this.corrupt(`entry header at ${offset} is truncated`);
      return chunk[pos++] as number;
    };
    let byte = next();
    const code = (byte >> 4) & 7;
    let size = byte & 0x0f;
    // A multiplier, not `2 ** shift`: a variable power is a call into V8's C++ (~30 ns, once per
    // entry); sizes past 2^31 rule out shifts.
    let scale = 16;
    while (byte & 0x80) {
      byte = next();
      size += (byte & 0x7f) * scale;
      scale *= 128;
    }
    let baseOffset: number | undefined;
    let baseOid: Buffer | undefined;
    if (code === OFS_DELTA) {
      byte = next();
      let distance = byte & 0x7f;
      while (byte & 0x80) {
        byte = next();
        distance = (distance + 1) * 128 + (byte & 0x7f);
      }
      baseOffset = offset - distance;
      if (baseOffset < 12) throw this.corrupt(`entry at ${offset} points before the pack start`);
    } else if (code === REF_DELTA) {
      if (pos + 20 > chunk.length) throw this.corrupt(`entry header at ${offset} is truncated`);
      baseOid = Buffer.from(chunk.subarray(pos, pos + 20));
      pos += 20;
    } else if (!TYPE_BY_CODE[code]) {
      throw this.corrupt(`entry at ${offset} has unknown type ${code}`);
    }
    // zlib never expands data by more than this bound, so one read usually suffices.
    const bound = size + (size >>> 10) + 64;
    if (pos + bound > chunk.length && offset + chunk.length < this.dataEnd) {
      chunk = this.readBytes(offset, pos + bound);
    }
    // Built once the data is in (every entry the same shape): a placeholder typed array would
    // cost an ArrayBuffer per entry (~170 ns, more than reading a small entry's header).
    return {
      code,
      data: this.inflate(chunk.subarray(pos), size, offset, viewIfWhole && TYPE_BY_CODE[code] !== undefined),
      baseOffset,
      baseOid,
    };
  }

  private inflate(compressed: Buffer, size: number, offset: number, view: boolean): Uint8Array {
    // Objects stored without compression (core.compression=0) need no zlib state at all.
    // A view into the read window is copied unless the caller is done with it before its next
    // read: windows are read into again (see `window`). Copying every body cost two-thread
    // exports of repositories GATOS writes (envelopes stored) 5-10% (decision 0009).
    const stored = inflateStored(compressed, size);
    if (stored) return view || stored.buffer !== compressed.buffer ? stored : Buffer.from(stored);
    if (size <= SMALL_INFLATE_LIMIT) {
      const small = inflateSmall(compressed, size);
      if (small) return small;
    }
    let data: Buffer;
    try {
      // The header gives the size: one output buffer of that size instead of zlib's default
      // 16 KiB chunk per object (most objects are a few hundred bytes), and nothing past it.
      data = inflateSync(compressed, { chunkSize: Math.max(64, size + 1), maxOutputLength: Math.max(1, size) });
    } catch (err) {
      throw new GatosError(
        'corrupt_pack',
        `pack ${this.packPath}: entry at ${offset} has damaged zlib data`,
        { path: this.packPath, offset },
        { cause: err },
      );
    }
    if (data.length !== size) throw this.corrupt(`entry at ${offset} inflates to ${data.length} bytes, header says ${size}`);
    return data;
  }
}
