/**
 * Event envelopes (SPEC §4.1): the unsigned core is canonical DAG-CBOR of the present fields
 * (`sig` never among them); Event-CID is CIDv1(dag-cbor, blake3) of those bytes; the Ed25519
 * signature covers the same bytes. Validation happens here, once, before anything is written.
 */
import { encodeDagCbor, eventCid } from '../codec/dag-cbor.js';
import { assertUlid } from '../codec/ulid.js';
import { GatosError } from '../errors.js';
import { actorPath, namespacePath } from '../git/gatos-refs.js';

export interface EventEnvelope {
  type: string;
  ulid: string;
  actor: string;
  payload: Record<string, unknown>;
  policy_root: string;
  sig_alg: 'ed25519';
  ts: string;
  caps?: string[];
}

const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_argument', message, data);
}

/** Payloads are JSON objects without floats: folds use fixed-point numbers (SPEC §5). */
function checkPayloadValue(value: unknown, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw invalid(`${path} is ${value}; payload numbers must be safe integers (no floats)`, { path });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => {
      checkPayloadValue(item, `${path}[${i}]`);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) checkPayloadValue(item, `${path}.${key}`);
  } else if (typeof value !== 'string' && typeof value !== 'boolean' && value !== null) {
    throw invalid(`${path} is not JSON data`, { path });
  }
}

export function checkEventFields(
  fields: {
    ns: string;
    type: string;
    actor: string;
    ulid: string;
    payload: unknown;
    caps?: unknown;
  },
  options: { namesChecked?: boolean } = {},
): void {
  // Batches check each (ns, actor) pair once, when they build its journal ref.
  if (!options.namesChecked) {
    namespacePath(fields.ns);
    actorPath(fields.actor);
  }
  assertUlid(fields.ulid);
  if (!TYPE_RE.test(fields.type))
    throw invalid(`event type must be 1-128 characters of letters, digits and . _ : -, got ${JSON.stringify(fields.type)}`);
  if (fields.payload === null || typeof fields.payload !== 'object' || Array.isArray(fields.payload))
    throw invalid('payload must be a JSON object');
  checkPayloadValue(fields.payload, 'payload');
  if (fields.caps !== undefined && (!Array.isArray(fields.caps) || fields.caps.some((cap) => typeof cap !== 'string'))) {
    throw invalid('caps must be an array of strings');
  }
}

/** Canonical bytes of the unsigned core and its Event-CID (requires `blake3Ready()`). */
export function envelopeBytes(envelope: EventEnvelope): { bytes: Uint8Array; cid: string } {
  const bytes = encodeDagCbor(envelope);
  return { bytes, cid: eventCid(bytes) };
}
