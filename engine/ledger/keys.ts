/**
 * Actor keys: Ed25519 key pairs from node:crypto. Private keys live only in a key directory
 * (0700, files 0600; default `<git-dir>/gatos/keys`, or `GATOS_KEY_DIR`) and never enter refs;
 * public keys are published in the trust graph (trust.ts) as `ed25519:<64 lowercase hex>`.
 *
 * @example
 *   const { publicKey } = createKey(dir, 'user:alice');
 *   const sig = signBytes(loadPrivateKey(dir, 'user:alice'), bytes);
 *   verifyBytes(publicKey, bytes, sig); // true
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GatosError } from '../errors.js';
import { actorPath } from '../git/gatos-refs.js';
import { makeDirs, writeFileWhole } from '../whole-writes.js';

export function keyDirectory(gitDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.GATOS_KEY_DIR || join(gitDir, 'gatos', 'keys');
}

function keyPath(dir: string, actor: string): string {
  return join(dir, `${actorPath(actor)}.pem`);
}

/*
 * Keys cross node:crypto as DER with the fixed RFC 8410 prefixes, never as JWK and never through
 * generateKeyPairSync: Node 20 can deadlock when a JWK export allocates while it holds a key's
 * lock and that allocation's garbage collection destroys the key-generation job sharing it
 * (`gatos key new` hung in about one run in twenty). A key made from 32 random bytes is the same
 * Ed25519 key generateKeyPairSync makes.
 */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The Ed25519 private key of a 32-byte seed (RFC 8032's private key). */
export function keyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new GatosError('invalid_key', `an Ed25519 seed is 32 bytes, got ${seed.length}`, { length: seed.length });
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** `ed25519:<hex>` of a key's raw 32-byte public part. */
export function publicKeyId(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (der.length !== SPKI_PREFIX.length + 32 || !der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX))
    throw new GatosError('invalid_key', 'the key is not an Ed25519 key', {});
  return `ed25519:${der.subarray(SPKI_PREFIX.length).toString('hex')}`;
}

export function hasKey(dir: string, actor: string): boolean {
  return existsSync(keyPath(dir, actor));
}

/** Makes and stores a new key pair; refuses to replace an existing one (`key_exists`). */
export function createKey(dir: string, actor: string): { actor: string; publicKey: string; path: string } {
  const path = keyPath(dir, actor);
  if (existsSync(path)) throw new GatosError('key_exists', `a key for ${actor} already exists at ${path}`, { actor, path });
  const privateKey = keyFromSeed(randomBytes(32));
  makeDirs(join(path, '..'), 0o700);
  chmodSync(dir, 0o700);
  // Whole or not at all: a key file cut short by a full disk would be unusable, and would make
  // `key new` answer key_exists.
  writeFileWhole(path, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, exclusive: true });
  return { actor, publicKey: publicKeyId(privateKey), path };
}

/** Deletes a key file; used to undo `createKey` when publishing its public half failed. */
export function removeKey(dir: string, actor: string): void {
  loaded.delete(keyPath(dir, actor));
  rmSync(keyPath(dir, actor), { force: true });
}

/** Parsed private keys by file path: key files are never replaced (`key_exists`). */
const loaded = new Map<string, KeyObject>();

export function loadPrivateKey(dir: string, actor: string): KeyObject {
  const path = keyPath(dir, actor);
  const hit = loaded.get(path);
  if (hit) return hit;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    throw new GatosError('key_not_found', `no private key for ${actor} in ${dir} (create one with: gatos key new --actor ${actor})`, {
      actor,
      dir,
    });
  }
  const key = createPrivateKey(pem);
  loaded.set(path, key);
  return key;
}

export function signBytes(key: KeyObject, bytes: Uint8Array): Uint8Array {
  return sign(null, bytes, key);
}

const KEY_RE = /^ed25519:([0-9a-f]{64})$/;

/** Verifies an Ed25519 signature against an `ed25519:<hex>` public key. */
export function verifyBytes(publicKey: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  const match = KEY_RE.exec(publicKey);
  if (!match || signature.length !== 64) return false;
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(match[1] as string, 'hex')]), format: 'der', type: 'spki' });
  return verify(null, bytes, key, signature);
}
