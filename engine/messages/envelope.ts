/**
 * Message envelopes (schema `event_envelope`, closed): `{ulid, ns, type, payload, refs?}`,
 * stored as RFC 8785 canonical JSON at `message/envelope.json`; `content_id` is the BLAKE3 of
 * exactly those bytes. Payload numbers must be safe integers, as in the ledger (decision 0003).
 */
import { contentId } from '../codec/blake3.js';
import { canonicalBytes } from '../codec/canonical-json.js';
import { assertUlid } from '../codec/ulid.js';
import { GatosError } from '../errors.js';

export interface MessageEnvelope {
  ulid: string;
  ns: string;
  type: string;
  payload: Record<string, unknown>;
  refs?: Record<string, unknown>;
}

const KEYS = new Set(['ulid', 'ns', 'type', 'payload', 'refs']);
const DIGEST_RE = /^blake3:[0-9a-fA-F]{64}$/;

function invalid(message: string): GatosError {
  return new GatosError('invalid_envelope', message);
}

function checkNumbers(value: unknown, path: string): void {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw invalid(`${path} is ${value}; numbers must be safe integers`);
  if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) checkNumbers(item, `${path}.${key}`);
}

/** Validates an envelope (with its ULID already set) and returns it. */
export function checkMessageEnvelope(value: unknown): MessageEnvelope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('an envelope must be a JSON object');
  const envelope = value as Record<string, unknown>;
  for (const key of Object.keys(envelope)) if (!KEYS.has(key)) throw invalid(`unknown envelope field ${JSON.stringify(key)}`);
  if (typeof envelope.ulid !== 'string') throw invalid('ulid is required');
  assertUlid(envelope.ulid);
  if (typeof envelope.ns !== 'string') throw invalid('ns must be a string');
  if (typeof envelope.type !== 'string' || envelope.type === '') throw invalid('type must be a non-empty string');
  if (envelope.payload === null || typeof envelope.payload !== 'object' || Array.isArray(envelope.payload))
    throw invalid('payload must be an object');
  if (envelope.refs !== undefined) {
    if (envelope.refs === null || typeof envelope.refs !== 'object' || Array.isArray(envelope.refs))
      throw invalid('refs must be an object');
    for (const key of ['state', 'proposal_id']) {
      const ref = (envelope.refs as Record<string, unknown>)[key];
      if (ref !== undefined && (typeof ref !== 'string' || !DIGEST_RE.test(ref))) throw invalid(`refs.${key} must be blake3:<64 hex>`);
    }
  }
  checkNumbers(envelope.payload, 'payload');
  checkNumbers(envelope.refs, 'refs');
  return envelope as unknown as MessageEnvelope;
}

/** Canonical bytes and content id (requires `blake3Ready()`). */
export function messageBytes(envelope: MessageEnvelope): { bytes: Uint8Array; contentId: string } {
  const bytes = canonicalBytes(envelope);
  return { bytes, contentId: contentId(bytes) };
}
