/**
 * Turns stored envelopes (DAG-CBOR or JSON bytes) into JSON-compatible values, so rows can be
 * serialized across threads and into exports. Bytes and CID links take their DAG-JSON forms:
 * `{"/": {"bytes": "<base64>"}}` and `{"/": "<cid>"}`.
 */
import { decode as decodeCbor } from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { GatosError } from '../errors.js';
import { decodeJsonDagCbor } from './dag-cbor-json.js';

/** Converts bytes and CIDs inside `value`; containers are copied only when something inside changed. */
export function toJsonValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return { '/': { bytes: Buffer.from(value).toString('base64').replace(/=+$/, '') } };
  const cid = CID.asCID(value);
  if (cid) return { '/': cid.toString() };
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((item, i) => {
      const converted = toJsonValue(item);
      if (converted === item) return;
      out ??= value.slice();
      out[i] = converted;
    });
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    const converted = toJsonValue(item);
    if (converted === item) continue;
    out ??= { ...(value as Record<string, unknown>) };
    out[key] = converted;
  }
  return out ?? value;
}

export function decodeEnvelope(bytes: Uint8Array, format: 'dag-cbor' | 'json'): unknown {
  // JSON-shaped envelopes (nearly all) hold no bytes or links to convert.
  const json = format === 'dag-cbor' ? decodeJsonDagCbor(bytes) : undefined;
  if (json !== undefined) return json;
  try {
    return format === 'json' ? JSON.parse(Buffer.from(bytes).toString('utf8')) : toJsonValue(decodeCbor(bytes));
  } catch (err) {
    throw new GatosError('corrupt_object', `envelope is not valid ${format}`, { format }, { cause: err });
  }
}
