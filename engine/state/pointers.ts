/**
 * Opaque pointers (schema `opaque_pointer`): private bytes stay outside Git, and the public
 * tree holds `{kind, algo, digest, size, location, capability}` instead. `digest` is the BLAKE3
 * of the plaintext, `size` is bucketed (1 KiB, 4 KiB, 16 KiB, 64 KiB, then powers of 4) so it
 * leaks little. The local private store is a directory of files named by digest hex (default
 * `<git-dir>/gatos/private`, or `GATOS_PRIVATE_STORE`); only `file:///` locations resolve
 * here, and bytes whose digest does not match are refused.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { contentId } from '../codec/blake3.js';
import { GatosError } from '../errors.js';
import { makeDirs, writeFileWhole } from '../whole-writes.js';

export interface OpaquePointer {
  kind: 'opaque_pointer';
  algo: 'blake3';
  digest: string;
  size: number;
  location: string;
  capability: string;
}

const LOCATION = /^(gatos-node:\/\/ed25519:[0-9a-f]{64}|file:\/\/\/|https:\/\/|s3:\/\/|ipfs:\/\/)/;
const CAPABILITY = /^(gatos-key:\/\/v1\/aes-256-gcm\/|kms:\/\/aws\/|age:\/\/|sops:\/\/)/;

export function privateStore(gitDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.GATOS_PRIVATE_STORE || join(gitDir, 'gatos', 'private');
}

/** The size a pointer reveals: the smallest bucket holding `n` bytes. */
export function bucketSize(n: number): number {
  let bucket = 1024;
  while (bucket < n) bucket *= 4;
  return bucket;
}

export function checkPointerUris(location: string, capability: string): void {
  if (!LOCATION.test(location))
    throw new GatosError('invalid_argument', `location must start with file:///, https://, s3://, ipfs:// or gatos-node://ed25519:<hex>`, {
      location,
    });
  if (!CAPABILITY.test(capability))
    throw new GatosError('invalid_argument', 'capability must start with gatos-key://v1/aes-256-gcm/, kms://aws/, age:// or sops://', {
      capability,
    });
}

/** A `file:///dir` location names the store directory itself. */
function storeDirOf(location: string): string {
  const path = fileURLToPath(location);
  return path.replace(/\/[0-9a-f]{64}$/, '');
}

/**
 * Stores `bytes` (for `file:///` locations, in that directory; else in `store`) and returns the
 * pointer. The file is written once, atomically; the same bytes always give the same pointer.
 */
export function putPrivate(bytes: Uint8Array, location: string, capability: string, store: string): OpaquePointer {
  checkPointerUris(location, capability);
  const digest = contentId(bytes);
  const hex = digest.slice(7);
  const dir = location.startsWith('file:///') ? storeDirOf(location) : store;
  makeDirs(dir, 0o700);
  const target = join(dir, hex);
  writeFileWhole(target, bytes, { mode: 0o600 });
  const where = location.startsWith('file:///') ? pathToFileURL(target).href : location;
  return { kind: 'opaque_pointer', algo: 'blake3', digest, size: bucketSize(bytes.length), location: where, capability };
}

/** Fetches the plaintext for a digest (from a `file:///` location or the store) and checks it. */
export function resolvePrivate(digest: string, store: string, location?: string): Uint8Array {
  if (!/^blake3:[0-9a-f]{64}$/.test(digest)) throw new GatosError('invalid_argument', `not a blake3 digest: ${digest}`);
  if (location !== undefined && !location.startsWith('file:///'))
    throw new GatosError('pointer_unreachable', `only file:/// locations resolve here, not ${location}`, { location });
  const dir = location ? storeDirOf(location) : store;
  const path = isAbsolute(dir) ? join(dir, digest.slice(7)) : join(process.cwd(), dir, digest.slice(7));
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new GatosError('pointer_unreachable', `no private bytes for ${digest} at ${path}`, { digest, path });
  }
  const actual = contentId(bytes);
  if (actual !== digest)
    throw new GatosError('pointer_digest_mismatch', `the bytes at ${path} hash to ${actual}, not ${digest}; refused`, { digest, actual });
  return bytes;
}

export function isPointer(value: unknown): value is OpaquePointer {
  return value !== null && typeof value === 'object' && (value as { kind?: unknown }).kind === 'opaque_pointer';
}
