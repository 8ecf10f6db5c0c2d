/**
 * Pack index v2 (`.idx`): a 256-entry fan-out table, sorted object ids, CRC-32s, 31-bit offsets
 * with an overflow table of 64-bit offsets, then the pack checksum and the index checksum.
 * Lookups binary-search the slice the fan-out selects.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GatosError } from '../errors.js';

const MAGIC = 0xff744f63; // "\377tOc"
const HEADER = 8;
const FANOUT = 256 * 4;

export class PackIndex {
  readonly count: number;
  /** The SHA-1 of the pack this index describes (its last 20 bytes). */
  readonly packChecksum: Buffer;
  private readonly data: Buffer;
  private readonly oidsAt: number;
  private readonly offsetsAt: number;
  private readonly largeOffsetsAt: number;

  constructor(
    data: Buffer,
    readonly path: string,
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
    const expected = createHash('sha1')
      .update(data.subarray(0, data.length - 20))
      .digest();
    if (!expected.equals(data.subarray(data.length - 20))) throw corrupt('checksum mismatch');
  }

  static open(path: string): PackIndex {
    return new PackIndex(readFileSync(path), path);
  }

  /** Pack offset of the object with this 20-byte id, or -1. */
  find(oid: Uint8Array): number {
    const first = oid[0] as number;
    let lo = first === 0 ? 0 : this.data.readUInt32BE(HEADER + (first - 1) * 4);
    let hi = this.data.readUInt32BE(HEADER + first * 4);
    const data = this.data;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = data.compare(oid, 0, 20, this.oidsAt + mid * 20, this.oidsAt + mid * 20 + 20);
      if (cmp === 0) return this.offsetAt(mid);
      if (cmp > 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
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

export interface IndexEntry {
  oid: Buffer;
  offset: number;
  crc: number;
}

/** Serializes a v2 index for a pack whose checksum is `packChecksum`. Sorts `entries` in place. */
export function buildPackIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  entries.sort((a, b) => Buffer.compare(a.oid, b.oid));
  const large = entries.filter((e) => e.offset >= 0x80000000);
  const size = HEADER + FANOUT + entries.length * 28 + large.length * 8 + 40;
  const out = Buffer.alloc(size);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(2, 4);
  let cursor = 0;
  for (let byte = 0; byte < 256; byte++) {
    while (cursor < entries.length && (entries[cursor] as IndexEntry).oid[0] === byte) cursor++;
    out.writeUInt32BE(cursor, HEADER + byte * 4);
  }
  const oidsAt = HEADER + FANOUT;
  const crcsAt = oidsAt + entries.length * 20;
  const offsetsAt = crcsAt + entries.length * 4;
  const largeAt = offsetsAt + entries.length * 4;
  let largeCount = 0;
  entries.forEach((entry, i) => {
    entry.oid.copy(out, oidsAt + i * 20);
    out.writeUInt32BE(entry.crc >>> 0, crcsAt + i * 4);
    if (entry.offset < 0x80000000) {
      out.writeUInt32BE(entry.offset, offsetsAt + i * 4);
    } else {
      out.writeUInt32BE((0x80000000 | largeCount) >>> 0, offsetsAt + i * 4);
      out.writeBigUInt64BE(BigInt(entry.offset), largeAt + largeCount * 8);
      largeCount++;
    }
  });
  packChecksum.copy(out, size - 40);
  createHash('sha1')
    .update(out.subarray(0, size - 20))
    .digest()
    .copy(out, size - 20);
  return out;
}
