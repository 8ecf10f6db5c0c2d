/**
 * ULIDs: strict validation, and generation from an injected clock (monotonic within one
 * millisecond) so that time enters only through the clock and tests can fix it.
 *
 * @example
 *   const next = createUlidFactory(() => Date.now());
 *   const id = next(); assertUlid(id);
 */
import { decodeTime, encodeTime, monotonicFactory } from 'ulid';
import { GatosError } from '../errors.js';

// 26 Crockford base32 characters; the first is at most 7 because a ULID is 128 bits.
const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

export function isUlid(value: string): boolean {
  return ULID_RE.test(value);
}

export function assertUlid(value: string, what = 'ulid'): string {
  if (!isUlid(value))
    throw new GatosError('invalid_ulid', `${what} is not a ULID (26 Crockford base32 characters): ${JSON.stringify(value)}`, { value });
  return value;
}

/** A generator of strictly increasing ULIDs using `clock` (ms) and `random` (0 <= x < 1). */
export function createUlidFactory(clock: () => number, random: () => number = Math.random): () => string {
  const factory = monotonicFactory(random);
  return () => factory(clock());
}

/** The millisecond timestamp a ULID carries. */
export function ulidTime(value: string): number {
  return decodeTime(assertUlid(value));
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The smallest ULID greater than `value` (same millisecond, random part + 1). */
export function nextUlid(value: string): string {
  const chars = assertUlid(value).split('');
  for (let i = chars.length - 1; i >= 0; i--) {
    const digit = ALPHABET.indexOf(chars[i] as string);
    if (digit < 31) {
      chars[i] = ALPHABET[digit + 1] as string;
      return chars.join('');
    }
    chars[i] = '0';
  }
  throw new GatosError('invalid_ulid', `no ULID follows ${value}`, { value });
}

/**
 * A ULID whose time part is `ms` and whose random part is the first 80 bits of `entropy` (at
 * least 10 bytes): the same inputs always give the same ULID.
 */
export function derivedUlid(ms: number, entropy: Uint8Array): string {
  let bits = 0n;
  for (let i = 0; i < 10; i++) bits = (bits << 8n) | BigInt(entropy[i] ?? 0);
  let random = '';
  for (let i = 0; i < 16; i++) random = ALPHABET[Number((bits >> BigInt(5 * i)) & 31n)] + random;
  return encodeTime(ms, 10) + random;
}
