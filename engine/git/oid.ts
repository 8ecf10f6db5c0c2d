import { createHash } from 'node:crypto';
import { GatosError } from '../errors.js';
import type { ObjectType, Oid } from './ports.js';

/** The all-zero oid: as an expected old value it means "the ref must not exist". */
export const ZERO_OID: Oid = '0000000000000000000000000000000000000000';

const OID_RE = /^[0-9a-f]{40}$/;

export function isOid(value: string): boolean {
  return OID_RE.test(value);
}

/** Validates a user-supplied oid (boundary check); returns it unchanged. */
export function assertOid(value: string, what = 'oid'): Oid {
  if (!isOid(value))
    throw new GatosError('invalid_oid', `${what} is not a 40-digit lowercase hex object id: ${JSON.stringify(value)}`, { value });
  return value;
}

/** The loose-object header `<type> <size>\0`. */
export function objectHeader(type: ObjectType, size: number): Buffer {
  return Buffer.from(`${type} ${size}\0`, 'latin1');
}

/** The id git gives an object: SHA-1 over header + body. */
export function hashObject(type: ObjectType, body: Uint8Array): Oid {
  return createHash('sha1').update(objectHeader(type, body.length)).update(body).digest('hex');
}
