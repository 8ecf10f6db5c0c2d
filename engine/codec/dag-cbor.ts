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
import { GatosError } from '../errors.js';
import { blake3Bytes } from './blake3.js';
import { decodeJsonDagCbor, encodeJsonDagCbor } from './dag-cbor-json.js';

export const DAG_CBOR_CODE = 0x71;
export const BLAKE3_MULTIHASH_CODE = 0x1e;

export function encodeDagCbor(value: unknown): Uint8Array {
  const json = encodeJsonDagCbor(value);
  if (json) return json;
  try {
    return encode(value);
  } catch (err) {
    throw new GatosError('invalid_object', `cannot encode as DAG-CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

export function decodeDagCbor(bytes: Uint8Array): unknown {
  const json = decodeJsonDagCbor(bytes);
  if (json !== undefined) return json;
  try {
    return decode(bytes);
  } catch (err) {
    throw new GatosError('invalid_object', `not valid DAG-CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** CIDv1 prefix: version 1, codec dag-cbor, multihash blake3 with a 32-byte digest (one-byte varints). */
const CID_PREFIX = [0x01, DAG_CBOR_CODE, BLAKE3_MULTIHASH_CODE, 0x20];

/** The CID of DAG-CBOR bytes with a BLAKE3 multihash (requires `blake3Ready()`), in multibase base32. */
export function eventCid(bytes: Uint8Array): string {
  const cid = new Uint8Array(36);
  cid.set(CID_PREFIX);
  cid.set(blake3Bytes(bytes), 4);
  let text = 'b';
  let value = 0;
  let bits = 0;
  for (const byte of cid) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      text += BASE32[(value >>> bits) & 31];
    }
  }
  if (bits > 0) text += BASE32[(value << (5 - bits)) & 31];
  return text;
}
