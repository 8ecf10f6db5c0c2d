/**
 * BLAKE3 content ids (`blake3:<64 lowercase hex>`). Small inputs go through hash-wasm: its WASM
 * hasher is created once (`await blake3Ready()` at startup) and then used synchronously, which
 * keeps hashing many small documents cheap (~0.9 µs for 200 bytes). Files and large buffers go
 * through the native BLAKE3 of @napi-rs/blake-hash when its prebuilt binary loads (SIMD: ~7 GB/s
 * against WASM's ~1 GB/s, but ~1.5 µs per call); both give the same digests (tested), and without
 * the binary everything stays on WASM.
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

interface NativeHasher {
  update(input: Buffer): NativeHasher;
  digest(format: 'hex'): string;
}
interface NativeBlake3 {
  blake3(input: Uint8Array): Buffer;
  Blake3Hasher: new () => NativeHasher;
}

/** Inputs from this size on are hashed natively (below it the call costs more than the hashing). */
export const NATIVE_FROM_BYTES = 16 * 1024;

let native: NativeBlake3 | null | undefined;

/** The native module, loaded on first use (~1.5 ms), or null where no prebuilt binary exists. */
function nativeBlake3(): NativeBlake3 | null {
  if (native === undefined) native = loadNative();
  return native;
}

/**
 * The package's own loader asks `process.report` which C library this is: a whole diagnostic
 * report, 4-5 ms on every thread that hashes a file. On Linux the glibc build is loaded
 * directly (1.5 ms); where that fails (musl, another layout) the package's loader decides.
 */
function loadNative(): NativeBlake3 | null {
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
    try {
      return require(`@napi-rs/blake-hash-linux-${process.arch}-gnu`) as NativeBlake3;
    } catch {
      // Not glibc, or not installed beside the package: its loader knows.
    }
  }
  try {
    return require('@napi-rs/blake-hash') as NativeBlake3;
  } catch {
    return null;
  }
}

/** Which implementation hashes files and large inputs here. */
export function largeInputHasher(): 'native' | 'wasm' {
  return nativeBlake3() ? 'native' : 'wasm';
}

/** For tests and benches: `false` keeps large inputs on WASM; `true` goes back to native when present. */
export function useNativeBlake3(enabled: boolean): void {
  native = enabled ? undefined : null;
}

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
  if (typeof data !== 'string' && data.length >= NATIVE_FROM_BYTES) {
    const fast = nativeBlake3();
    if (fast) return fast.blake3(data).toString('hex');
  }
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
  const fast = nativeBlake3();
  const h: { update(chunk: Buffer): unknown; digest(format: 'hex'): string } = fast ? new fast.Blake3Hasher() : ready().init();
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
