/**
 * `messages.read`: a page of a topic, oldest to newest, after an optional cursor ULID. Pages cost
 * O(page): the segment holding the cursor is found from the segment refs (ordered by segment
 * ULID), and each segment's (ulid, commit) list is built once per segment tip and cached, so
 * paging through a topic is linear, not quadratic. Pruned segments are simply not there.
 */
import { contentId } from '../codec/blake3.js';
import { assertUlid } from '../codec/ulid.js';
import { GatosError } from '../errors.js';
import { findTreeEntry, readCommit, readTransient } from '../git/object-codec.js';
import type { ObjectStore, Oid } from '../git/ports.js';
import { parseTrailers } from '../git/trailers.js';
import { type Bus, ulidOf } from './publish.js';
import { assertTopic, headRef, listSegments } from './topics.js';

export interface ReadMessage {
  ulid: string;
  commit: Oid;
  content_id: string;
  envelope_path: 'message/envelope.json';
  canonical_json: string;
}

export interface ReadPage {
  messages: ReadMessage[];
  next_since: string | null;
  checkpoint_hint: { group: string; topic: string } | null;
}

export const DEFAULT_LIMIT = 128;
export const MAX_LIMIT = 512;

interface Entry {
  ulid: string;
  commit: Oid;
  /** Kept from the walk so a page read does not parse each commit again. */
  tree: Oid;
}

/** Segment tip -> its messages oldest first. Tips never change meaning, so entries never go stale. */
const segmentIndex = new WeakMap<ObjectStore, Map<Oid, Entry[]>>();

/** The bytes of `message/envelope.json` in a message commit's tree. */
function envelopeBytes(objects: ObjectStore, tree: Oid, commit: Oid): Uint8Array {
  // The trees are done with at once; the envelope's bytes go to the caller, so they are read whole.
  const dir = findTreeEntry(readTransient(objects, tree).body, 'message');
  const blob = dir && findTreeEntry(readTransient(objects, dir.oid).body, 'envelope.json');
  if (!blob) throw new GatosError('corrupt_object', `message commit ${commit} has no message/envelope.json`, { commit });
  return objects.read(blob.oid).body;
}

/**
 * Every message of one segment with its envelope bytes, newest first, for readers of whole
 * segments (the exporter). Nothing is cached or paged: one pass over the objects that keeps
 * nothing alive.
 */
export function visitSegment(
  objects: ObjectStore,
  tip: Oid,
  visit: (message: { ulid: string; commit: Oid; envelope: Uint8Array }) => void,
): void {
  walkSegment(objects, tip, ({ ulid, commit, tree }) => visit({ ulid, commit, envelope: envelopeBytes(objects, tree, commit) }));
}

/** The message commits of one segment, newest first (commits without a ULID are not messages). */
function walkSegment(objects: ObjectStore, tip: Oid, visit: (entry: Entry) => void): void {
  let cursor: Oid | undefined = tip;
  while (cursor) {
    const commit = readCommit(objects, cursor);
    const ulid = ulidOf(parseTrailers(commit.message));
    if (ulid) visit({ ulid, commit: cursor, tree: commit.tree });
    // Not parents[0] on the root: a read past the end deoptimizes the walk once per segment.
    cursor = commit.parents.length > 0 ? commit.parents[0] : undefined;
  }
}

function segmentEntries(objects: ObjectStore, tip: Oid): Entry[] {
  let perStore = segmentIndex.get(objects);
  if (!perStore) {
    perStore = new Map();
    segmentIndex.set(objects, perStore);
  }
  const cached = perStore.get(tip);
  if (cached) return cached;
  const entries: Entry[] = [];
  walkSegment(objects, tip, (entry) => entries.push(entry));
  entries.reverse();
  perStore.set(tip, entries);
  return entries;
}

/** Index of the first entry with a ULID greater than `since`. */
function firstAfter(entries: Entry[], since: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as Entry).ulid <= since) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1)
    throw new GatosError('limit_out_of_range', `limit must be an integer of at least 1, got ${limit}`, { limit });
  return Math.min(limit, MAX_LIMIT);
}

export function readMessages(bus: Bus, topic: string, options: { since?: string; limit?: number } = {}): ReadPage {
  assertTopic(topic);
  const limit = clampLimit(options.limit);
  if (options.since !== undefined) assertUlid(options.since, 'since_ulid');
  if (!bus.refs.resolve(headRef(topic)))
    throw new GatosError('topic_not_found', `topic ${topic} has no messages (no ${headRef(topic)})`, { topic });
  const segments = listSegments(bus.refs, topic);
  let start = 0;
  if (options.since !== undefined) {
    // The last segment opened at or before the cursor holds the next message (or ends before it).
    for (let i = 0; i < segments.length; i++) if ((segments[i] as { ulid: string }).ulid <= options.since) start = i;
  }
  const messages: ReadMessage[] = [];
  for (let s = start; s < segments.length && messages.length < limit; s++) {
    const entries = segmentEntries(bus.objects, (segments[s] as { tip: Oid }).tip);
    for (let i = options.since === undefined ? 0 : firstAfter(entries, options.since); i < entries.length && messages.length < limit; i++) {
      const { ulid, commit, tree } = entries[i] as Entry;
      const bytes = envelopeBytes(bus.objects, tree, commit);
      messages.push({
        ulid,
        commit,
        content_id: contentId(bytes),
        envelope_path: 'message/envelope.json',
        canonical_json: Buffer.from(bytes).toString('base64'),
      });
    }
  }
  return { messages, next_since: messages.length > 0 ? (messages[messages.length - 1] as ReadMessage).ulid : null, checkpoint_hint: null };
}
