/**
 * Turns stored envelopes (DAG-CBOR or JSON bytes) into JSON-compatible values, so rows can be
 * serialized across threads and into exports. Bytes and CID links take their DAG-JSON forms:
 * `{"/": {"bytes": "<base64>"}}` and `{"/": "<cid>"}`.
 */
import { decode as decodeCbor } from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { GatosError } from '../errors.js';

export function toJsonValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return { '/': { bytes: Buffer.from(value).toString('base64').replace(/=+$/, '') } };
  const cid = CID.asCID(value);
  if (cid) return { '/': cid.toString() };
  if (Array.isArray(value)) return value.map(toJsonValue);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = toJsonValue(item);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array, format: 'dag-cbor' | 'json'): unknown {
  try {
    return format === 'json' ? JSON.parse(Buffer.from(bytes).toString('utf8')) : toJsonValue(decodeCbor(bytes));
  } catch (err) {
    throw new GatosError('corrupt_object', `envelope is not valid ${format}`, { format }, { cause: err });
  }
}
