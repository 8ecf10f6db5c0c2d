/**
 * Writes a packfile plus its v2 index, streaming: entries are appended to a temp file as they
 * arrive, so memory holds only the index table (32 bytes per object). The object count in the
 * header is patched at the end and the checksum computed over the final file. The `.idx` is
 * renamed into place last, so readers never see a pack without its index.
 *
 * Compression is separable (`prepareObject`) so worker threads can hash and deflate while one
 * writer appends.
 *
 * @example
 *   const writer = new PackWriter(objectsDir);
 *   writer.add('blob', bytes);
 *   const { packPath } = writer.finish();
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { writeAll } from '../whole-writes.js';
import { hashObjectRaw } from './oid.js';
import { IndexTable } from './pack-index.js';
import type { GitObject, ObjectType, Oid, PreparedObject } from './ports.js';
import { deflateObject } from './small-deflate.js';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const FLUSH_BYTES = 1 << 20;

export type { PreparedObject } from './ports.js';

/** Hashes and compresses an object; `level` 0 stores it uncompressed (like core.compression=0). */
export function prepareObject(type: ObjectType, body: Uint8Array, level = 1, knownOid?: Oid): PreparedObject {
  const oid = knownOid === undefined ? hashObjectRaw(type, body) : Buffer.from(knownOid, 'hex');
  return { oid, type, size: body.length, deflated: deflateObject(body, level) };
}

/** Compresses a raw object from `unpackRawObjects` (its id travels with it). */
export function prepareRaw(raw: PreparedObject, level = 1): PreparedObject {
  return { oid: raw.oid, type: raw.type, size: raw.size, deflated: deflateObject(raw.deflated, level) };
}

export function isPrepared(object: GitObject | PreparedObject): object is PreparedObject {
  return (object as PreparedObject).deflated !== undefined;
}

const TYPE_BY_CODE: ObjectType[] = ['commit', 'commit', 'tree', 'blob', 'tag'];

/**
 * Prepared objects back to back in one standalone buffer (transferable between threads):
 * 20-byte id, 1-byte type code, u32 size, u32 deflated length, deflated bytes.
 */
export function packPrepared(objects: readonly PreparedObject[]): Uint8Array {
  const total = objects.reduce((sum, object) => sum + 29 + object.deflated.length, 0);
  const out = Buffer.from(new ArrayBuffer(total));
  let pos = 0;
  for (const object of objects) {
    out.set(object.oid.subarray(0, 20), pos);
    out.writeUInt8(TYPE_CODE[object.type], pos + 20);
    out.writeUInt32BE(object.size, pos + 21);
    out.writeUInt32BE(object.deflated.length, pos + 25);
    out.set(object.deflated, pos + 29);
    pos += 29 + object.deflated.length;
  }
  return new Uint8Array(out.buffer, 0, total);
}

/** The objects of a `packPrepared` buffer (views into it, no copies). */
export function* unpackPrepared(objects: Uint8Array): Generator<PreparedObject> {
  const view = Buffer.from(objects.buffer, objects.byteOffset, objects.byteLength);
  let pos = 0;
  while (pos < view.length) {
    const length = view.readUInt32BE(pos + 25);
    yield {
      oid: view.subarray(pos, pos + 20),
      type: TYPE_BY_CODE[view.readUInt8(pos + 20)] as ObjectType,
      size: view.readUInt32BE(pos + 21),
      deflated: view.subarray(pos + 29, pos + 29 + length),
    };
    pos += 29 + length;
  }
}

/**
 * Raw objects with their ids in the `packPrepared` framing, the body where the deflated bytes
 * would be: how objects hashed on one thread travel to be compressed on another.
 */
export function packRawObjects(objects: readonly GitObject[]): Uint8Array {
  return packPrepared(
    objects.map((object) => ({
      oid: object.oid === undefined ? hashObjectRaw(object.type, object.body) : Buffer.from(object.oid, 'hex'),
      type: object.type,
      size: object.body.length,
      deflated: object.body,
    })),
  );
}

/** The objects of a `packRawObjects` buffer; `deflated` holds the raw body. */
export const unpackRawObjects = unpackPrepared;

/** Writes a pack entry's type-and-size header at `pos`; returns the position after it. */
function writeEntryHeader(out: Uint8Array, pos: number, type: ObjectType, size: number): number {
  let byte = (TYPE_CODE[type] << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    out[pos++] = byte | 0x80;
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  out[pos++] = byte;
  return pos;
}

/** An entry header takes at most this many bytes (sizes below 2^53). */
const MAX_ENTRY_HEADER = 10;

export interface WrittenPack {
  packPath: string;
  idxPath: string;
  count: number;
}

export class PackWriter {
  private readonly tempPath: string;
  private readonly fd: number;
  /** Findable by id unless the caller vouches that ids are unique: then a second copy is skipped. */
  private readonly table: IndexTable;
  /** Entries not yet written, back to back. */
  private readonly pending = Buffer.allocUnsafe(FLUSH_BYTES);
  private pendingBytes = 0;
  private offset = 12;
  private done = false;

  /** `unique: true` skips duplicate detection (and its memory) for writers that cannot repeat an id. */
  constructor(
    private readonly objectsDir: string,
    options: { unique?: boolean } = {},
  ) {
    this.table = new IndexTable(!options.unique);
    this.tempPath = join(objectsDir, 'pack', `tmp_pack_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2)}`);
    this.fd = openSync(this.tempPath, 'wx+', 0o444);
    writeAll(this.fd, Buffer.alloc(12)); // header placeholder, patched in finish()
  }

  get count(): number {
    return this.table.count;
  }

  add(type: ObjectType, body: Uint8Array): void {
    this.addPrepared(prepareObject(type, body));
  }

  /** Appends a prepared object; a second copy of the same id is skipped. */
  addPrepared(object: PreparedObject): void {
    const oid = object.oid.subarray(0, 20);
    if (this.table.findable && this.table.has(oid)) return;
    const { deflated } = object;
    const room = MAX_ENTRY_HEADER + deflated.length;
    if (this.pendingBytes + room > FLUSH_BYTES) this.flush();
    let length: number;
    let crc: number;
    if (room > FLUSH_BYTES) {
      const header = Buffer.allocUnsafe(MAX_ENTRY_HEADER);
      const end = writeEntryHeader(header, 0, object.type, object.size);
      writeAll(this.fd, header.subarray(0, end));
      writeAll(this.fd, deflated);
      crc = crc32(deflated, crc32(header.subarray(0, end)));
      length = end + deflated.length;
    } else {
      // Header and body side by side in the buffer: one copy, one CRC call.
      const start = this.pendingBytes;
      const body = writeEntryHeader(this.pending, start, object.type, object.size);
      this.pending.set(deflated, body);
      this.pendingBytes = body + deflated.length;
      crc = crc32(this.pending.subarray(start, this.pendingBytes));
      length = this.pendingBytes - start;
    }
    this.table.add(oid, this.offset, crc);
    this.offset += length;
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    writeAll(this.fd, this.pending.subarray(0, this.pendingBytes));
    this.pendingBytes = 0;
  }

  /** Removes the temp file; for error paths. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    closeSync(this.fd);
    unlinkSync(this.tempPath);
  }

  /** Completes the pack; returns undefined (and leaves nothing behind) when it is empty. */
  finish(): WrittenPack | undefined {
    if (this.table.count === 0) {
      this.abort();
      return undefined;
    }
    const idxTemp = `${this.tempPath}.idx`;
    let checksum: Buffer;
    try {
      this.flush();
      const header = Buffer.alloc(12);
      header.write('PACK', 0, 'latin1');
      header.writeUInt32BE(2, 4);
      header.writeUInt32BE(this.table.count, 8);
      writeAll(this.fd, header, 0);
      checksum = this.hashFile();
      writeAll(this.fd, checksum, this.offset);
      // On disk before a ref can point into them, as git does by default for packs and their
      // indexes (core.fsync: objects and derived metadata, loose objects aside).
      fsyncSync(this.fd);
      const idx = openSync(idxTemp, 'wx', 0o444);
      try {
        writeAll(idx, this.table.build(checksum));
        fsyncSync(idx);
      } finally {
        closeSync(idx);
      }
    } catch (err) {
      // A full disk while completing: no temporary pack or index is left in objects/pack.
      rmSync(idxTemp, { force: true });
      this.abort();
      throw err;
    }
    closeSync(this.fd);
    this.done = true;
    const name = join(this.objectsDir, 'pack', `pack-${checksum.toString('hex')}`);
    renameSync(this.tempPath, `${name}.pack`);
    renameSync(idxTemp, `${name}.idx`);
    return { packPath: `${name}.pack`, idxPath: `${name}.idx`, count: this.table.count };
  }

  private hashFile(): Buffer {
    const hash = createHash('sha1');
    const chunk = Buffer.allocUnsafe(4 << 20);
    let position = 0;
    while (position < this.offset) {
      const got = readSync(this.fd, chunk, 0, Math.min(chunk.length, this.offset - position), position);
      if (got === 0) break;
      hash.update(chunk.subarray(0, got));
      position += got;
    }
    return hash.digest();
  }
}
