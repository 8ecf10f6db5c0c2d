/**
 * DAG-CBOR for JSON-shaped data without floats: strings, safe integers, booleans, null, arrays
 * and plain objects, which is all an event envelope holds. The encoder writes the bytes
 * `@ipld/dag-cbor` writes for such values (shortest heads, map keys ordered by encoded length
 * then bytewise) in one pass into one buffer, about 5x faster on envelopes; the decoder reads
 * such bytes into the values the library returns (object keys in canonical JSON's order rather
 * than as stored), without its token objects and its char-by-char strings. Both decline anything
 * else (floats, bytes, CIDs, undefined, and on decoding anything the library would refuse or read
 * differently) by returning undefined, so the caller uses the library, which then decides.
 *
 * @example
 *   encodeJsonDagCbor({ b: 1, a: 'x' }); // same bytes as encode() from @ipld/dag-cbor
 *   decodeJsonDagCbor(bytes); // same value as decode() from @ipld/dag-cbor, or undefined
 */

import { compareKeys } from './canonical-json.js';

let out = Buffer.allocUnsafe(4096);
let pos = 0;

function room(bytes: number): void {
  if (pos + bytes <= out.length) return;
  const next = Buffer.allocUnsafe(Math.max(out.length * 2, pos + bytes));
  out.copy(next, 0, 0, pos);
  out = next;
}

/** A CBOR head: major type and argument, shortest form. */
function head(major: number, n: number): void {
  room(9);
  const m = major << 5;
  if (n < 24) out[pos++] = m | n;
  else if (n < 0x100) {
    out[pos++] = m | 24;
    out[pos++] = n;
  } else if (n < 0x10000) {
    out[pos++] = m | 25;
    out.writeUInt16BE(n, pos);
    pos += 2;
  } else if (n < 0x100000000) {
    out[pos++] = m | 26;
    out.writeUInt32BE(n, pos);
    pos += 4;
  } else {
    out[pos++] = m | 27;
    out.writeUInt32BE(Math.floor(n / 0x100000000), pos);
    out.writeUInt32BE(n >>> 0, pos + 4);
    pos += 8;
  }
}

function text(value: string): void {
  const n = value.length;
  // Optimistically ASCII: one byte per code unit, written here; otherwise the UTF-8 encoder.
  if (n < 0x100) {
    room(2 + n);
    const start = pos;
    if (n < 24) out[pos++] = 0x60 | n;
    else {
      out[pos++] = 0x78;
      out[pos++] = n;
    }
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c > 0x7f) break;
      out[pos + i] = c;
    }
    if (i === n) {
      pos += n;
      return;
    }
    pos = start;
  }
  const length = Buffer.byteLength(value, 'utf8');
  head(3, length);
  room(length);
  pos += out.write(value, pos, 'utf8');
}

/** Map keys in DAG-CBOR order: shorter UTF-8 first, then bytewise (code units for ASCII). */
function keyOrder(a: string, b: string): number {
  const la = Buffer.byteLength(a, 'utf8');
  const lb = Buffer.byteLength(b, 'utf8');
  if (la !== lb) return la - lb;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** ASCII keys compare as their code units; insertion sort suits the few keys of a record. */
function sortedKeys(value: Record<string, unknown>): string[] {
  const keys = Object.keys(value);
  let ascii = true;
  for (const key of keys) if (!isAscii(key)) ascii = false;
  if (!ascii) return keys.sort(keyOrder);
  if (keys.length > 16) return keys.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    for (; j >= 0; j--) {
      const other = keys[j] as string;
      if (other.length < key.length || (other.length === key.length && other < key)) break;
      keys[j + 1] = other;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/** Writes `value`; false when it holds something outside the supported subset. */
function write(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      text(value);
      return true;
    case 'number':
      if (!Number.isSafeInteger(value)) return false;
      if (value >= 0) head(0, value);
      else head(1, -1 - value);
      return true;
    case 'boolean':
      room(1);
      out[pos++] = value ? 0xf5 : 0xf4;
      return true;
    case 'object': {
      if (value === null) {
        room(1);
        out[pos++] = 0xf6;
        return true;
      }
      if (Array.isArray(value)) {
        head(4, value.length);
        for (const item of value) if (!write(item)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = sortedKeys(value as Record<string, unknown>);
      head(5, keys.length);
      for (const key of keys) {
        text(key);
        if (!write((value as Record<string, unknown>)[key])) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** DAG-CBOR bytes of JSON-shaped `value`, or undefined when it holds anything else. */
export function encodeJsonDagCbor(value: unknown): Uint8Array | undefined {
  pos = 0;
  if (!write(value)) return undefined;
  return Uint8Array.prototype.slice.call(out, 0, pos);
}

/** Thrown inside the decoder when the input leaves the subset; never escapes it. */
const DECLINE = Symbol('decline');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const NOTHING = Buffer.alloc(0);
let input: Buffer = NOTHING;
let at = 0;

/**
 * A head's argument in shortest form. Anything else is declined: longer forms (the library's
 * strict mode refuses them), indefinite lengths, values past 2^53 - 1 (the library returns
 * BigInts for those).
 */
function argument(info: number): number {
  if (info < 24) return info;
  if (info > 27) throw DECLINE;
  ensure(1 << (info - 24)); // 1, 2, 4 or 8 bytes
  let n: number;
  if (info === 24) {
    n = input[at++] as number;
    if (n < 24) throw DECLINE;
  } else if (info === 25) {
    n = input.readUInt16BE(at);
    at += 2;
    if (n < 0x100) throw DECLINE;
  } else if (info === 26) {
    n = input.readUInt32BE(at);
    at += 4;
    if (n < 0x10000) throw DECLINE;
  } else {
    n = input.readUInt32BE(at) * 0x100000000 + input.readUInt32BE(at + 4);
    at += 8;
    if (n < 0x100000000 || n > Number.MAX_SAFE_INTEGER) throw DECLINE;
  }
  return n;
}

/** `length` more bytes must exist. */
function ensure(length: number): void {
  if (at + length > input.length) throw DECLINE;
}

function readText(length: number): string {
  ensure(length);
  const start = at;
  at += length;
  for (let i = start; i < at; i++) {
    if ((input[i] as number) > 0x7f) {
      // The library's decoder drops a leading byte order mark and replaces bad sequences.
      if (input[start] === 0xef && input[start + 1] === 0xbb && input[start + 2] === 0xbf) throw DECLINE;
      return strictUtf8.decode(input.subarray(start, at));
    }
  }
  return input.toString('latin1', start, at);
}

function readItem(): unknown {
  ensure(1);
  const initial = input[at++] as number;
  const major = initial >> 5;
  const info = initial & 31;
  switch (major) {
    case 0:
      return argument(info);
    case 1: {
      const n = argument(info);
      if (n === Number.MAX_SAFE_INTEGER) throw DECLINE;
      return -1 - n;
    }
    case 3:
      return readText(argument(info));
    case 4: {
      const length = argument(info);
      ensure(length);
      const items: unknown[] = new Array(length);
      for (let i = 0; i < length; i++) items[i] = readItem();
      return items;
    }
    case 5: {
      const length = argument(info);
      ensure(length * 2);
      const keys: string[] = new Array(length);
      const values: unknown[] = new Array(length);
      for (let i = 0; i < length; i++) {
        ensure(1);
        const keyHead = input[at++] as number;
        if (keyHead >> 5 !== 3) throw DECLINE;
        const key = readText(argument(keyHead & 31));
        if (key === '__proto__') throw DECLINE;
        keys[i] = key;
        values[i] = readItem();
      }
      return inKeyOrder(keys, values);
    }
    case 7:
      if (initial === 0xf4) return false;
      if (initial === 0xf5) return true;
      if (initial === 0xf6) return null;
      throw DECLINE;
    default:
      throw DECLINE;
  }
}

/**
 * The object of a map's entries, its keys put in in the order canonical JSON sorts them (UTF-16
 * code units) rather than DAG-CBOR's length-first order: `canonicalize` then leaves the object to
 * JSON.stringify. A repeated key is declined.
 */
function inKeyOrder(keys: string[], values: unknown[]): Record<string, unknown> {
  const n = keys.length;
  if (n > 16) {
    const order = keys.map((_, i) => i).sort((a, b) => compareKeys(keys[a] as string, keys[b] as string));
    return objectOf(
      order.map((i) => keys[i] as string),
      order.map((i) => values[i]),
    );
  }
  // Insertion sort: maps are small, and Array.prototype.sort allocates per call.
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    const value = values[i];
    let j = i;
    for (; j > 0 && (keys[j - 1] as string) > key; j--) {
      keys[j] = keys[j - 1] as string;
      values[j] = values[j - 1];
    }
    keys[j] = key;
    values[j] = value;
  }
  return objectOf(keys, values);
}

/** The object of sorted keys and their values; a repeated key (next to itself once sorted) is declined. */
function objectOf(keys: readonly string[], values: readonly unknown[]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0 && keys[i - 1] === key) throw DECLINE;
    object[key] = values[i];
  }
  return object;
}

/** The value of DAG-CBOR `bytes` holding JSON-shaped data, or undefined for anything else. */
export function decodeJsonDagCbor(bytes: Uint8Array): unknown {
  input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  at = 0;
  try {
    const value = readItem();
    return at === input.length ? value : undefined;
  } catch {
    // DECLINE, a read past the end, invalid UTF-8 or a stack overflow: the library decides.
    return undefined;
  } finally {
    input = NOTHING; // the caller's bytes are not kept alive
  }
}
