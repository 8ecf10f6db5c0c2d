/**
 * The Git objects of one journal event: the envelope blob at `event/envelope.cbor` (two trees)
 * and the commit whose subject is `<type> <ulid>` and whose trailers carry `Event-CID` and, for
 * signed events, `Sig-Alg`/`Sig`. Shared by journal appends, their worker-thread variant and
 * the fixture generator, so every producer writes the same layout (decision 0003).
 */

import type { KeyObject } from 'node:crypto';
import { isUlid } from '../codec/ulid.js';
import { type Commit, serializeCommit, serializeTree } from '../git/object-codec.js';
import { hashObject, ZERO_OID } from '../git/oid.js';
import { prepareObject } from '../git/pack-writer.js';
import type { GitObject, Oid, PreparedObject } from '../git/ports.js';
import { type Trailer, withTrailers } from '../git/trailers.js';
import { type EventEnvelope, envelopeBytes } from './envelope.js';
import { signBytes } from './keys.js';

export interface EnvelopeTree {
  /** Blob, `event/` tree, root tree: raw, or hashed and compressed when a level was given. */
  objects: Array<GitObject | PreparedObject>;
  root: Oid;
}

/** The envelope blob and the two trees holding it; `level` prepares them for a pack. */
export function envelopeTree(bytes: Uint8Array, level?: number): EnvelopeTree {
  const blobOid = hashObject('blob', bytes);
  const sub = serializeTree([{ mode: '100644', name: 'envelope.cbor', oid: blobOid }]);
  const root = serializeTree([{ mode: '40000', name: 'event', oid: hashObject('tree', sub) }]);
  const raw: GitObject[] = [
    { type: 'blob', body: bytes },
    { type: 'tree', body: sub },
    { type: 'tree', body: root },
  ];
  const objects = level === undefined ? raw : raw.map((object) => prepareObject(object.type, object.body, level));
  return { objects, root: hashObject('tree', root) };
}

export interface EventHeader {
  type: string;
  ulid: string;
  actor: string;
  cid: string;
  /** `ed25519:<hex>`; fixtures write unsigned events. */
  signature?: string;
}

/** The commit body of an event on top of `parent` (ZERO_OID for the first event). */
export function eventCommit(header: EventHeader, root: Oid, parent: Oid, seconds: number): Uint8Array {
  const [kind, name] = header.actor.split(':') as [string, string];
  const who = { name: header.actor, email: `${name}@${kind}.gatos.invalid`, timestamp: seconds, timezone: '+0000' };
  const trailers: Trailer[] = [{ key: 'Event-CID', value: header.cid }];
  if (header.signature) trailers.push({ key: 'Sig-Alg', value: 'ed25519' }, { key: 'Sig', value: header.signature });
  return serializeCommit({
    tree: root,
    parents: parent === ZERO_OID ? [] : [parent],
    author: who,
    committer: who,
    message: withTrailers(`${header.type} ${header.ulid}`, trailers),
  });
}

/** An event encoded, signed and given its tree: everything that does not depend on the tip. */
export interface SealedEvent extends EnvelopeTree {
  cid: string;
  signature: string;
}

export function sealEvent(envelope: EventEnvelope, key: KeyObject, level?: number): SealedEvent {
  const { bytes, cid } = envelopeBytes(envelope);
  const signature = `ed25519:${Buffer.from(signBytes(key, bytes)).toString('hex')}`;
  return { cid, signature, ...envelopeTree(bytes, level) };
}

/** The ULID in an event commit's subject (`<type> <ulid>`). */
export function subjectUlid(commit: Commit): string | undefined {
  const subject = commit.message.slice(0, commit.message.indexOf('\n') >>> 0);
  const ulid = subject.slice(subject.lastIndexOf(' ') + 1);
  return isUlid(ulid) ? ulid : undefined;
}
