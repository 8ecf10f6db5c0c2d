/**
 * Publishing on the message plane (decision 0006). Each segment is its own commit chain (its
 * first message is a root commit), so deleting a segment's ref really frees it; the segment ref
 * `refs/gatos/messages/<topic>/YYYY/MM/DD/HH/<segment-ulid>` points at the segment's newest
 * message and `.../<topic>/head` at the topic's newest. A batch writes its objects, then moves
 * the segment ref(s) and the head in ONE transaction with expected old values (zero for new
 * refs); a lost race is retried with jittered backoff and then surfaces as `head_conflict`.
 * ULIDs are strictly increasing per topic. Segments rotate when the UTC hour changes, or at
 * `maxMessages` / `maxBytes` (100,000 / 192 MiB by default).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { contentId } from '../codec/blake3.js';
import { parseJson } from '../codec/canonical-json.js';
import { createUlidFactory, isUlid, nextUlid } from '../codec/ulid.js';
import { GatosError, hasCode } from '../errors.js';
import { type Commit, findTreeEntry, readCommit, serializeCommit, serializeTree, type TreeEntry } from '../git/object-codec.js';
import { hashObject, ZERO_OID } from '../git/oid.js';
import type { GitObject, ObjectStore, Oid, RefStore } from '../git/ports.js';
import { PoolPreparer } from '../git/prepare-on-pool.js';
import { parseTrailers, type Trailer, trailerValue, withTrailers } from '../git/trailers.js';
import type { Clock } from '../ledger/clock.js';
import type { ComputePool } from '../scheduler/pool.js';
import { emit, type PublishFact, publishChannel, type RotationFact, rotationChannel } from './diagnostics.js';
import { checkMessageEnvelope, type MessageEnvelope, messageBytes } from './envelope.js';
import { assertNoTopicClash, assertTopic, headRef, segmentPrefix, segmentRef } from './topics.js';

export interface Bus {
  objects: ObjectStore;
  refs: RefStore;
  clock: Clock;
}

export interface PublishOptions {
  maxMessages?: number;
  maxBytes?: number;
  attempts?: number;
  /** Worker pool: large batches are compressed on it while ids and commits are built here. */
  pool?: ComputePool;
}

/** Batches of at least this many messages are compressed on the pool when one is given. */
export const POOL_MIN_MESSAGES = 1024;

export interface Receipt {
  ulid: string;
  commit: Oid;
  content_id: string;
  segment: string;
  /** Why this message opened a new segment, when it did. */
  rotated?: 'first' | 'hour' | 'max_messages' | 'max_bytes';
}

/**
 * Segment metadata, carried by every message commit as `Segment-*` trailers (decision 0006;
 * topics written before that keep it at `meta/meta.json`, which `readMeta` still reads).
 */
export interface SegmentMeta {
  version: 1;
  segment_prefix: string;
  segment_ulid: string;
  started_at_epoch: number;
  message_count: number;
  approximate_bytes: number;
  /** Tip of the previous segment, or null for a topic's first segment. */
  prev_segment_tip: Oid | null;
}

/**
 * An envelope to publish; `ulid` is generated when absent. `attachments` (name -> bytes) are
 * stored at `message/attachments/<name>` and referenced from the envelope as
 * `refs["attachment:<name>"] = blake3:<hex>`; the envelope's content id covers that reference.
 */
export type DraftEnvelope = Omit<MessageEnvelope, 'ulid'> & { ulid?: string; attachments?: Record<string, Uint8Array> };

const ATTACHMENT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Splits attachments off a draft, validating names, and records their ids in `refs`. */
function withAttachmentRefs(draft: DraftEnvelope): {
  envelope: Omit<DraftEnvelope, 'attachments'>;
  attachments: Array<[string, Uint8Array]>;
} {
  const { attachments, ...envelope } = draft;
  const entries = Object.entries(attachments ?? {});
  if (entries.length === 0) return { envelope, attachments: [] };
  const refs: Record<string, unknown> = { ...(envelope.refs ?? {}) };
  for (const [name, bytes] of entries) {
    if (!ATTACHMENT_NAME.test(name) || name === '.' || name === '..')
      throw new GatosError('invalid_envelope', `attachment name ${JSON.stringify(name)} must be 1-128 of A-Z a-z 0-9 . _ -`);
    refs[`attachment:${name}`] = contentId(bytes);
  }
  return { envelope: { ...envelope, refs }, attachments: entries };
}

const AUTHOR = { name: 'gatos-message-plane', email: 'message-plane@gatos.local', timezone: '+0000' };

const SEGMENT_TRAILERS = ['Segment-Prefix', 'Segment-Ulid', 'Segment-Started', 'Segment-Count', 'Segment-Bytes'] as const;

function metaTrailers(meta: SegmentMeta): Trailer[] {
  return [
    { key: 'Segment-Prefix', value: meta.segment_prefix },
    { key: 'Segment-Ulid', value: meta.segment_ulid },
    { key: 'Segment-Started', value: String(meta.started_at_epoch) },
    { key: 'Segment-Count', value: String(meta.message_count) },
    { key: 'Segment-Bytes', value: String(meta.approximate_bytes) },
    ...(meta.prev_segment_tip ? [{ key: 'Segment-Prev', value: meta.prev_segment_tip }] : []),
  ];
}

export function readMeta(objects: ObjectStore, commit: Oid): SegmentMeta | undefined {
  return messageFacts(objects, commit).meta;
}

/** Segment metadata from a message commit's trailers, or from `meta/meta.json` in older topics. */
function metaOf(objects: ObjectStore, parsed: Commit, trailers: Trailer[]): SegmentMeta | undefined {
  const [prefix, ulid, started, count, bytes] = SEGMENT_TRAILERS.map((key) => trailerValue(trailers, key));
  if (prefix && ulid && started && count && bytes) {
    return {
      version: 1,
      segment_prefix: prefix,
      segment_ulid: ulid,
      started_at_epoch: Number(started),
      message_count: Number(count),
      approximate_bytes: Number(bytes),
      prev_segment_tip: trailerValue(trailers, 'Segment-Prev') ?? null,
    };
  }
  const meta = findTreeEntry(objects.read(parsed.tree).body, 'meta');
  const file = meta && findTreeEntry(objects.read(meta.oid).body, 'meta.json');
  return file ? (parseJson(Buffer.from(objects.read(file.oid).body).toString('utf8')) as SegmentMeta) : undefined;
}

export function commitUlid(objects: ObjectStore, commit: Oid): string | undefined {
  return ulidOf(parseTrailers(readCommit(objects, commit).message));
}

/** A message commit's ULID (its `Event-Id` trailer); undefined for a commit that is not a message. */
export function ulidOf(trailers: Trailer[]): string | undefined {
  const ulid = trailerValue(trailers, 'Event-Id')?.replace(/^ulid:/, '');
  return ulid && isUlid(ulid) ? ulid : undefined;
}

/** What a publish needs from a topic's head commit: its segment metadata and its ULID. */
interface HeadFacts {
  meta: SegmentMeta | undefined;
  ulid: string | undefined;
}

/**
 * Head commits this process published last, per object store (a few per store, one per busy
 * topic): the next publish on the topic finds its head here instead of reading and parsing the
 * commit. Keyed by commit id, so an entry can never go stale.
 */
const recentHeads = new WeakMap<ObjectStore, Map<Oid, HeadFacts>>();
const RECENT_HEADS = 64;

function remember(objects: ObjectStore, commit: Oid, facts: HeadFacts): void {
  let recent = recentHeads.get(objects);
  if (!recent) {
    recent = new Map();
    recentHeads.set(objects, recent);
  }
  recent.set(commit, facts);
  if (recent.size > RECENT_HEADS) recent.delete(recent.keys().next().value as Oid);
}

/** The segment metadata and ULID of a message commit (a topic's head, a segment's tip), read from it. */
export function messageFacts(objects: ObjectStore, commit: Oid): HeadFacts {
  const parsed = readCommit(objects, commit);
  const trailers = parseTrailers(parsed.message);
  return { meta: metaOf(objects, parsed, trailers), ulid: ulidOf(trailers) };
}

/** `messageFacts` of a topic's head, found among the heads this process published last when it can be. */
function headFacts(objects: ObjectStore, head: Oid): HeadFacts {
  const recent = recentHeads.get(objects)?.get(head);
  if (recent) return recent;
  const facts = messageFacts(objects, head);
  remember(objects, head, facts);
  return facts;
}

/** The objects of one message: attachments, the envelope, `message/` and the root tree. */
function messageTree(bytes: Uint8Array, attachments: Array<[string, Uint8Array]> = []): { objects: GitObject[]; tree: Oid } {
  // Every object carries its id, so the writers do not hash it a second time.
  const object = (type: 'blob' | 'tree', body: Uint8Array): GitObject => ({ type, body, oid: hashObject(type, body) });
  const envelope = object('blob', bytes);
  const extra = attachments.map(([, body]) => object('blob', body));
  const entries: TreeEntry[] = [{ mode: '100644', name: 'envelope.json', oid: envelope.oid as Oid }];
  if (attachments.length > 0) {
    const names = attachments.map(([name], i) => ({ mode: '100644' as const, name, oid: extra[i]?.oid as Oid }));
    const attachmentTree = object('tree', serializeTree(names));
    extra.push(attachmentTree);
    entries.push({ mode: '40000', name: 'attachments', oid: attachmentTree.oid as Oid });
  }
  const messageDir = object('tree', serializeTree(entries));
  const root = object('tree', serializeTree([{ mode: '40000', name: 'message', oid: messageDir.oid as Oid }]));
  return { objects: [...extra, envelope, messageDir, root], tree: root.oid as Oid };
}

/**
 * Publishes envelopes in order on one topic; returns a receipt per envelope. Publishes issued
 * on the same topic while another is being written (or within one turn of the event loop) are
 * committed together — one pack or set of loose objects and one ref transaction for the group —
 * and each caller still gets exactly its own receipts (group commit). A group that fails is
 * retried caller by caller, so one caller's bad envelope never fails another's.
 */
export function publish(bus: Bus, topic: string, drafts: readonly DraftEnvelope[], options: PublishOptions = {}): Promise<Receipt[]> {
  try {
    assertTopic(topic);
    for (const draft of drafts) if (draft.ulid !== undefined) checkMessageEnvelope(withAttachmentRefs(draft).envelope);
  } catch (err) {
    return Promise.reject(err);
  }
  if (drafts.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    let topics = waitingByBus.get(bus);
    if (!topics) {
      topics = new Map();
      waitingByBus.set(bus, topics);
    }
    const queue = topics.get(topic);
    const entry: Waiting = { drafts, options, resolve, reject };
    if (queue) {
      queue.push(entry); // joins the next group of the running drain
      return;
    }
    topics.set(topic, [entry]);
    void drain(bus, topic, topics);
  });
}

interface Waiting {
  drafts: readonly DraftEnvelope[];
  options: PublishOptions;
  resolve(receipts: Receipt[]): void;
  reject(err: unknown): void;
}

/** Per bus and topic, the publishes waiting for the next group commit. */
const waitingByBus = new WeakMap<Bus, Map<string, Waiting[]>>();

/** Commits a topic's waiting publishes group by group until none are left. */
async function drain(bus: Bus, topic: string, topics: Map<string, Waiting[]>): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve)); // gather this turn's publishes
  const queue = topics.get(topic) as Waiting[];
  while (queue.length > 0) {
    const first = queue[0] as Waiting;
    // Only publishes with the same options share a commit.
    let size = 1;
    while (size < queue.length && sameOptions((queue[size] as Waiting).options, first.options)) size++;
    await commitGroup(bus, topic, queue.splice(0, size));
  }
  topics.delete(topic);
}

function sameOptions(a: PublishOptions, b: PublishOptions): boolean {
  return a.maxMessages === b.maxMessages && a.maxBytes === b.maxBytes && a.attempts === b.attempts && a.pool === b.pool;
}

async function commitGroup(bus: Bus, topic: string, group: Waiting[]): Promise<void> {
  const options = (group[0] as Waiting).options;
  try {
    const receipts = await publishWithRetry(
      bus,
      topic,
      group.flatMap((entry) => entry.drafts),
      options,
    );
    let at = 0;
    for (const entry of group) {
      entry.resolve(receipts.slice(at, at + entry.drafts.length));
      at += entry.drafts.length;
    }
  } catch (err) {
    if (group.length === 1) {
      (group[0] as Waiting).reject(err);
      return;
    }
    // Nothing of the group was published (validation precedes writes, the ref update is
    // all-or-nothing): each caller now gets its own outcome.
    for (const entry of group) {
      try {
        entry.resolve(await publishWithRetry(bus, topic, entry.drafts, entry.options));
      } catch (own) {
        entry.reject(own);
      }
    }
  }
}

async function publishWithRetry(bus: Bus, topic: string, drafts: readonly DraftEnvelope[], options: PublishOptions): Promise<Receipt[]> {
  const limits = { maxMessages: options.maxMessages ?? 100_000, maxBytes: options.maxBytes ?? 192 * 1024 * 1024 };
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      const receipts = await publishOnce(bus, topic, drafts, limits, options.pool);
      emit<PublishFact>(publishChannel, { topic, result: 'ok', messages: receipts.length });
      for (const r of receipts) {
        if (r.rotated && r.rotated !== 'first') emit<RotationFact>(rotationChannel, { topic, reason: r.rotated, segment: r.segment });
      }
      return receipts;
    } catch (err) {
      const conflict = hasCode(err, 'head_conflict');
      if (!conflict || attempt >= attempts) {
        emit<PublishFact>(publishChannel, { topic, result: conflict ? 'conflict' : 'error', messages: 0 });
        throw err;
      }
      await sleep(Math.random() * Math.min(500, 25 * 2 ** (attempt - 1)));
    }
  }
}

async function publishOnce(
  bus: Bus,
  topic: string,
  drafts: readonly DraftEnvelope[],
  limits: { maxMessages: number; maxBytes: number },
  pool: ComputePool | undefined,
): Promise<Receipt[]> {
  const head = bus.refs.resolve(headRef(topic)) ?? ZERO_OID;
  if (head === ZERO_OID) assertNoTopicClash(bus.refs, topic);
  const known = head === ZERO_OID ? undefined : headFacts(bus.objects, head);
  let meta = known?.meta;
  let last = known?.ulid;
  let parent = head;
  let segmentTipBefore = head;
  const generate = createUlidFactory(bus.clock);
  const objects: GitObject[] = [];
  // Large batches are compressed on the pool chunk by chunk while the chain is built here.
  const preparer = pool && drafts.length >= POOL_MIN_MESSAGES ? new PoolPreparer(pool) : undefined;
  const receipts: Receipt[] = [];
  const segmentMoves = new Map<string, { from: Oid; to: Oid }>();
  for (const original of drafts) {
    const { envelope: draft, attachments } = withAttachmentRefs(original);
    const now = bus.clock();
    let ulid = draft.ulid ?? generate();
    if (last !== undefined && ulid <= last) {
      if (draft.ulid !== undefined)
        throw new GatosError('ulid_not_monotonic', `ULID ${ulid} is not after the topic's newest ${last}`, { ulid, head_ulid: last });
      ulid = nextUlid(last);
    }
    const envelope = checkMessageEnvelope({ ...draft, ulid });
    const { bytes, contentId } = messageBytes(envelope);
    const prefix = segmentPrefix(now);
    const rotated: Receipt['rotated'] = !meta
      ? 'first'
      : meta.segment_prefix !== `${topic}/${prefix}`
        ? 'hour'
        : meta.message_count >= limits.maxMessages
          ? 'max_messages'
          : meta.approximate_bytes + bytes.length > limits.maxBytes
            ? 'max_bytes'
            : undefined;
    if (rotated) {
      meta = {
        version: 1,
        segment_prefix: `${topic}/${prefix}`,
        segment_ulid: ulid,
        started_at_epoch: Math.floor(now / 1000),
        message_count: 1,
        approximate_bytes: bytes.length,
        prev_segment_tip: parent === ZERO_OID ? null : parent,
      };
      segmentTipBefore = ZERO_OID;
    } else {
      meta = {
        ...(meta as SegmentMeta),
        message_count: (meta as SegmentMeta).message_count + 1,
        approximate_bytes: (meta as SegmentMeta).approximate_bytes + bytes.length,
      };
    }
    const { objects: treeObjects, tree } = messageTree(bytes, attachments);
    const who = { ...AUTHOR, timestamp: Math.floor(now / 1000) };
    const message = withTrailers(envelope.type, [
      { key: 'Event-Id', value: `ulid:${ulid}` },
      { key: 'Content-Id', value: contentId },
      ...metaTrailers(meta),
    ]);
    // A new segment starts a chain of its own: no parent, so pruning it frees its objects.
    const body = serializeCommit({ tree, parents: rotated || parent === ZERO_OID ? [] : [parent], author: who, committer: who, message });
    const commit = hashObject('commit', body);
    if (preparer) await preparer.add(...treeObjects, { type: 'commit', body, oid: commit });
    else objects.push(...treeObjects, { type: 'commit', body, oid: commit });
    const ref = segmentRef(topic, meta.segment_prefix.slice(topic.length + 1), meta.segment_ulid);
    const move = segmentMoves.get(ref);
    segmentMoves.set(ref, { from: move ? move.from : segmentTipBefore, to: commit });
    segmentTipBefore = commit;
    receipts.push({ ulid, commit, content_id: contentId, segment: ref, ...(rotated ? { rotated } : {}) });
    parent = commit;
    last = ulid;
  }
  if (receipts.length === 0) return receipts;
  // The head is checked again by the transaction, so waiting for the pool cannot lose a race.
  if (preparer) bus.objects.writeMany(await preparer.finish());
  else if (objects.length >= 64) bus.objects.writeMany(objects);
  else for (const object of objects) bus.objects.write(object.type, object.body, object.oid);
  const transaction = bus.refs.transaction();
  for (const [ref, { from, to }] of segmentMoves) transaction.update(ref, to, from);
  transaction.update(headRef(topic), parent, head);
  try {
    transaction.commit();
    remember(bus.objects, parent, { meta, ulid: last });
  } catch (err) {
    if (hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked')) {
      throw new GatosError('head_conflict', `topic ${topic} moved while publishing; retry`, { topic }, { cause: err });
    }
    throw err;
  }
  return receipts;
}
