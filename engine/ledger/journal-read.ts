/**
 * Reading journals: decode one event (checking its Event-CID and signature against the trust
 * graph) and list a namespace's events.
 */
import { decodeDagCbor, eventCid } from '../codec/dag-cbor.js';
import { GatosError } from '../errors.js';
import { JOURNAL_PREFIX, namespacePath, parseJournalRef } from '../git/gatos-refs.js';
import { findTreeEntry, readCommit } from '../git/object-codec.js';
import type { ObjectStore, Oid, RefStore } from '../git/ports.js';
import { parseTrailers, trailerValue } from '../git/trailers.js';
import type { EventEnvelope } from './envelope.js';
import { subjectUlid } from './event-objects.js';
import { verifyBytes } from './keys.js';
import { keysOf, readTrust } from './trust.js';

export interface ShownEvent {
  commit: Oid;
  ref?: string;
  envelope: EventEnvelope;
  event_cid: string;
  cid_ok: boolean;
  signature_ok: boolean;
}

/** Decodes an event commit and checks its CID and signature against the trust graph. */
export function readEvent(objects: ObjectStore, refs: RefStore, commitOid: Oid): ShownEvent {
  const commit = readCommit(objects, commitOid);
  const sub = findTreeEntry(objects.read(commit.tree).body, 'event');
  const blob = sub && findTreeEntry(objects.read(sub.oid).body, 'envelope.cbor');
  if (!blob) throw new GatosError('not_an_event', `commit ${commitOid} carries no event/envelope.cbor`, { commit: commitOid });
  const bytes = objects.read(blob.oid).body;
  const envelope = decodeDagCbor(bytes) as EventEnvelope;
  const trailers = parseTrailers(commit.message);
  const cid = eventCid(bytes);
  const sig = trailerValue(trailers, 'Sig') ?? '';
  const signature = /^ed25519:[0-9a-f]{128}$/.test(sig) ? Buffer.from(sig.slice(8), 'hex') : new Uint8Array(0);
  const { graph } = readTrust(objects, refs);
  const signatureOk = keysOf(graph, envelope.actor).some((key) => verifyBytes(key, bytes, signature));
  return { commit: commitOid, envelope, event_cid: cid, cid_ok: trailerValue(trailers, 'Event-CID') === cid, signature_ok: signatureOk };
}

export interface ListedEvent {
  commit: Oid;
  ref: string;
  ulid: string;
  type: string;
  actor: string;
  time: number;
}

/** Events of a namespace (optionally one actor), newest first per journal. */
export function listEvents(objects: ObjectStore, refs: RefStore, ns: string, actor?: string): ListedEvent[] {
  namespacePath(ns);
  const out: ListedEvent[] = [];
  for (const entry of refs.list(`${JOURNAL_PREFIX}${ns}/`)) {
    const parsed = parseJournalRef(entry.name);
    if (!parsed || parsed.ns !== ns || (actor && parsed.actor !== actor)) continue;
    let cursor: Oid | undefined = entry.oid;
    while (cursor) {
      const commit = readCommit(objects, cursor);
      const subject = commit.message.split('\n')[0] ?? '';
      out.push({
        commit: cursor,
        ref: entry.name,
        ulid: subjectUlid(commit) ?? '',
        type: subject.slice(0, subject.lastIndexOf(' ')),
        actor: parsed.actor,
        time: commit.committer.timestamp,
      });
      cursor = commit.parents[0];
    }
  }
  return out;
}
