/**
 * Loose objects: `objects/ab/cdef...`, each a zlib stream of `<type> <size>\0<body>`.
 * Reads verify the id (a loose object is read rarely, and a renamed or damaged file must not
 * pass as another object). Writes are atomic: temp file in the fan-out directory, then rename;
 * an existing object is never rewritten. Like git's default (`core.fsync` without
 * `loose-object`), object files are not fsynced: the ref update is the commit point.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { GatosError } from '../errors.js';
import { makeDirs, writeAll } from '../whole-writes.js';
import { hashObject, objectHeader } from './oid.js';
import type { GitObject, ObjectType, Oid } from './ports.js';
import { deflateObject } from './small-deflate.js';
import { inflateUpTo, SMALL_INFLATE_LIMIT } from './small-inflate.js';

const TYPES = new Set<string>(['commit', 'tree', 'blob', 'tag']);
/** A loose object's header, `<type> <size>\0`, is at most this long (a 20-digit size). */
const LOOSE_HEADER_MAX = 32;

export function loosePath(objectsDir: string, oid: Oid): string {
  return join(objectsDir, oid.slice(0, 2), oid.slice(2));
}

/** How many loose objects `objectsDir` holds, counted by name in its fan-out directories (none opened). */
export function countLoose(objectsDir: string): number {
  let count = 0;
  if (!existsSync(objectsDir)) return count;
  for (const entry of readdirSync(objectsDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !/^[0-9a-f]{2}$/.test(entry.name)) continue;
    for (const name of readdirSync(join(objectsDir, entry.name))) if (name.length === 38) count++;
  }
  return count;
}

/** Decodes the inflated `<type> <size>\0<body>` form; throws `corrupt_object` when malformed. */
export function decodeLoose(raw: Buffer, oid: Oid): GitObject {
  const nul = raw.indexOf(0);
  const space = raw.indexOf(0x20);
  if (nul === -1 || space === -1 || space > nul) throw new GatosError('corrupt_object', `object ${oid}: bad header`, { oid });
  const type = raw.toString('latin1', 0, space);
  const size = Number(raw.toString('latin1', space + 1, nul));
  if (!TYPES.has(type) || !Number.isInteger(size) || size !== raw.length - nul - 1) {
    throw new GatosError('corrupt_object', `object ${oid}: bad header`, { oid });
  }
  return { type: type as ObjectType, body: raw.subarray(nul + 1) };
}

/** Reads a loose object, or returns undefined when its file does not exist. */
export function readLoose(objectsDir: string, oid: Oid): GitObject | undefined {
  let compressed: Buffer;
  try {
    compressed = readFileSync(loosePath(objectsDir, oid));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let raw: Buffer;
  try {
    // Most loose objects are small: decoded in JavaScript when they fit, by zlib otherwise.
    raw =
      (compressed.length <= SMALL_INFLATE_LIMIT ? inflateUpTo(compressed, SMALL_INFLATE_LIMIT + LOOSE_HEADER_MAX) : undefined) ??
      inflateSync(compressed);
  } catch (err) {
    throw new GatosError('corrupt_object', `object ${oid}: zlib data is damaged`, { oid }, { cause: err });
  }
  const object = decodeLoose(raw, oid);
  const actual = hashObject(object.type, object.body);
  if (actual !== oid) throw new GatosError('hash_mismatch', `object ${oid}: content hashes to ${actual}`, { oid, actual });
  return object;
}

let tempCounter = 0;

/** Writes a loose object atomically unless it already exists. */
export function writeLoose(objectsDir: string, oid: Oid, type: ObjectType, body: Uint8Array): void {
  const target = loosePath(objectsDir, oid);
  const dir = join(objectsDir, oid.slice(0, 2));
  const temp = join(dir, `tmp_obj_${process.pid}_${tempCounter++}_${oid.slice(2, 10)}`);
  const compressed = deflateObject(Buffer.concat([objectHeader(type, body.length), body]));
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o444);
  } catch (err) {
    // The fan-out directory is made on first use only: one syscall less per object after that.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    makeDirs(dir);
    fd = openSync(temp, 'wx', 0o444);
  }
  try {
    writeAll(fd, compressed);
  } catch (err) {
    // A full disk: no truncated temp file left behind either.
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  try {
    // Objects are immutable: if another writer got there first, its copy is identical.
    renameSync(temp, target);
  } catch (err) {
    unlinkSync(temp);
    throw err;
  }
}
