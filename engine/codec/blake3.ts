/**
 * BLAKE3 content ids (`blake3:<64 lowercase hex>`) via hash-wasm. The WASM hasher is created
 * once (`await blake3Ready()` at startup) and then used synchronously, which keeps hashing of
 * many small documents cheap.
 *
 * @example
 *   await blake3Ready();
 *   contentId(new TextEncoder().encode('abc')); // 'blake3:6437b3ac...'
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IHasher } from 'hash-wasm';
import { GatosError } from '../errors.js';
import { canonicalBytes } from './canonical-json.js';

// The package's main entry is a 280 KB bundle of every algorithm, which Node scans for exports
// at every thread's start (~16 ms per worker); the BLAKE3 build alone is 21 KB.
const { createBLAKE3 } = createRequire(import.meta.url)('hash-wasm/dist/blake3.umd.min.js') as typeof import('hash-wasm');

let hasher: IHasher | undefined;

export async function blake3Ready(): Promise<void> {
  hasher ??= await createBLAKE3();
}

function ready(): IHasher {
  if (!hasher) throw new GatosError('internal', 'BLAKE3 used before blake3Ready() resolved');
  return hasher;
}

export function blake3Bytes(data: Uint8Array | string): Uint8Array {
  const h = ready();
  h.init();
  h.update(data);
  return h.digest('binary');
}

export function blake3Hex(data: Uint8Array | string): string {
  const h = ready();
  h.init();
  h.update(data);
  return h.digest('hex');
}

export function contentId(data: Uint8Array | string): string {
  return `blake3:${blake3Hex(data)}`;
}

/** BLAKE3 hex of a file, read 4 MiB at a time (memory stays flat whatever the file's size). */
export function blake3HexOfFile(path: string): { hex: string; size: number } {
  const h = ready();
  h.init();
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  const fd = openSync(path, 'r');
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      h.update(chunk.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return { hex: h.digest('hex'), size };
}

const CONTENT_ID_RE = /^blake3:[0-9a-f]{64}$/;

export function isContentId(value: string): boolean {
  return CONTENT_ID_RE.test(value);
}

/** The content id of a JSON value: BLAKE3 over its RFC 8785 canonical bytes. */
export function contentIdOfJson(value: unknown): string {
  return contentId(canonicalBytes(value));
}
