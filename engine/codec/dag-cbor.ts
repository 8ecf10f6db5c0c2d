/**
 * DAG-CBOR (map keys sorted length-first then bytewise, shortest integers, no indefinite
 * lengths) and the event CID: CIDv1, codec dag-cbor (0x71), multihash blake3-256 (0x1e),
 * rendered in base32 lowercase (`b...`).
 *
 * @example
 *   const bytes = encodeDagCbor({ type: 'x', ulid: '01H...' });
 *   eventCid(bytes); // 'bafyr4i...'
 */
import { decode, encode } from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { GatosError } from '../errors.js';
import { blake3Bytes } from './blake3.js';

export const DAG_CBOR_CODE = 0x71;
export const BLAKE3_MULTIHASH_CODE = 0x1e;

export function encodeDagCbor(value: unknown): Uint8Array {
  try {
    return encode(value);
  } catch (err) {
    throw new GatosError('invalid_object', `cannot encode as DAG-CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

export function decodeDagCbor(bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch (err) {
    throw new GatosError('invalid_object', `not valid DAG-CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

/** The CID of DAG-CBOR bytes with a BLAKE3 multihash (requires `blake3Ready()`). */
export function eventCid(bytes: Uint8Array): string {
  return CID.createV1(DAG_CBOR_CODE, Digest.create(BLAKE3_MULTIHASH_CODE, blake3Bytes(bytes))).toString();
}
