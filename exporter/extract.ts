/**
 * Extractors of the logs: journals (commits, events) and message topics, read into rows in no
 * particular order (the staging area sorts them), here or in parallel on the pool. Journals are
 * walked per ref from each ref's head down to, not including, the heads of a previous export
 * (`since`). The snapshot tables are read by snapshots.ts.
 */

import { join, sep } from 'node:path';
import type { Predicate } from '../dsl/ast.js';
import { contentId } from '../engine/codec/blake3.js';
import { parseJson } from '../engine/codec/canonical-json.js';
import { ulidTime } from '../engine/codec/ulid.js';
import { GatosError } from '../engine/errors.js';
import { objectDirs } from '../engine/git/alternates.js';
import { JOURNAL_PREFIX, parseJournalRef } from '../engine/git/gatos-refs.js';
import { type SharedIndex, sharedIndexesUnder } from '../engine/git/pack-index.js';
import type { ObjectStore, Oid, ReadTotals, RefEntry, RefStore } from '../engine/git/ports.js';
import { trailerValue } from '../engine/git/trailers.js';
import { descendsFrom, StorageOrderWalk, startFrontier, storageKey, walkCommits } from '../engine/git/walk.js';
import { Heap } from '../engine/heap.js';
import { messageFacts } from '../engine/messages/publish.js';
import { visitSegment } from '../engine/messages/read.js';
import { listSegments } from '../engine/messages/topics.js';
import { type ScanRow, scanRow } from '../engine/scan/scan-range.js';
import type { ComputePool } from '../engine/scheduler/pool.js';
import type { ExportJournalTask, JournalSlice, SegmentSlice } from '../engine/scheduler/tasks.js';
import type { StagingArea } from './staging.js';
import { jsonCell, type Row } from './tables.js';

export interface Source {
  objects: ObjectStore;
  refs: RefStore;
}

/** Every commit reachable from `oid` (the `--until` bound). */
export function ancestry(objects: ObjectStore, oid: Oid): Set<Oid> {
  const seen = new Set<Oid>();
  walkCommits(objects, startFrontier([oid]), Number.MAX_SAFE_INTEGER, (commit) => {
    seen.add(commit);
  });
  return seen;
}

/** Every journal ref, in ref order. */
export function journalRefs(refs: RefStore): RefEntry[] {
  return refs.list(JOURNAL_PREFIX).filter((entry) => parseJournalRef(entry.name) !== undefined);
}

/** Receives rows as they are extracted, in no particular order. */
export type Emit = (table: 'commits' | 'events', row: Row) => void;

/** Emits one scanned journal commit to the tables that want it. */
export function addJournalRow(row: ScanRow, ns: string, take: { commits: boolean; events: boolean }, emit: Emit): void {
  if (take.commits)
    emit('commits', {
      id: row.commit,
      parent_id: row.parents[0] ?? null,
      ref: row.ref,
      author: row.author,
      ts: row.ts,
      message: row.message,
      trailers: jsonCell(row.trailers),
      shape_root: null,
      created_ts: row.ts,
      updated_ts: row.ts,
    });
  if (!take.events || row.envelopePath !== 'event/envelope.cbor') return;
  const envelope = row.envelope as { type: string; actor: string; ulid: string; payload: unknown };
  emit('events', {
    id: row.commit,
    event_cid: trailerValue(row.trailers, 'Event-CID') ?? '',
    ns,
    kind: envelope.type,
    actor: envelope.actor,
    ulid: envelope.ulid,
    ts: row.ts,
    payload: jsonCell(envelope.payload),
    commit_id: row.commit,
    created_ts: row.ts,
    updated_ts: row.ts,
  });
}

export interface JournalWindow {
  /** ref -> head already exported. */
  since: ReadonlyMap<string, Oid>;
  /** Which refs each table reads (what the planner kept). */
  wanted: { commits: ReadonlySet<string>; events: ReadonlySet<string> };
  /** `--since`: nothing reachable from this commit. */
  after?: Oid;
  /** `--until`: only these commits. */
  until?: ReadonlySet<Oid>;
}

const takeOf = (window: JournalWindow, ref: string) => ({ commits: window.wanted.commits.has(ref), events: window.wanted.events.has(ref) });

/** The refs worth reading: wanted by a table and moved since the last export. */
function refsToRead(heads: readonly RefEntry[], window: JournalWindow): RefEntry[] {
  return heads.filter((head) => {
    const take = takeOf(window, head.name);
    return (take.commits || take.events) && window.since.get(head.name) !== head.oid;
  });
}

/**
 * `commits` and `events` rows of the journals in the window, read in this thread, up to
 * TASK_COMMITS commits per step of the iterator: a caller can let its event loop run between
 * steps (to see a signal) and the walk resumes where it stopped, as the pool's tasks do.
 */
export function* journalSteps(source: Source, heads: readonly RefEntry[], window: JournalWindow, emit: Emit): Generator<void> {
  const reader = new SliceReader(source.objects, journalSlices(heads, window));
  const onRow = (row: ScanRow, slice: JournalSlice) => {
    if (!window.until || window.until.has(row.commit)) addJournalRow(row, slice.ns, slice.take, emit);
  };
  while (reader.step(TASK_COMMITS, onRow) > 0) yield;
}

/** The journals to read as slices, each from its head down to what was exported (and `--since`). */
function journalSlices(heads: readonly RefEntry[], window: JournalWindow): JournalSlice[] {
  return refsToRead(heads, window).map((head) => {
    const stops = [window.since.get(head.name), window.after].filter((oid): oid is Oid => oid !== undefined);
    return {
      ref: head.name,
      ns: parseJournalRef(head.name)?.ns ?? '',
      take: takeOf(window, head.name),
      frontier: startFrontier([head.oid], stops),
    };
  });
}

/**
 * Journal slices read together, as rows, in storage order (`StorageOrderWalk`): in a repository
 * packed by git, journals interleaved in time are read side by side, front to back.
 */
export class SliceReader {
  private readonly walk: StorageOrderWalk;

  constructor(
    private readonly objects: ObjectStore,
    private readonly slices: readonly JournalSlice[],
  ) {
    this.walk = new StorageOrderWalk(
      objects,
      slices.map((slice) => slice.frontier),
    );
  }

  /** Reads up to `limit` commits; returns how many (0 once every slice is read). */
  step(limit: number, onRow: (row: ScanRow, slice: JournalSlice) => void): number {
    return this.walk.step(limit, (range, oid, commit) => {
      const slice = this.slices[range] as JournalSlice;
      onRow(scanRow(this.objects, slice.ref, oid, commit), slice);
    });
  }

  /** The slices not read to their end, with where each resumes, in the order given. */
  rest(): JournalSlice[] {
    const frontiers = this.walk.frontiers();
    return this.slices.flatMap((slice, i) => {
      const frontier = frontiers[i] ?? [];
      return frontier.length > 0 ? [{ ...slice, frontier }] : [];
    });
  }
}

/** `journalSteps` all at once. */
export function journalRows(source: Source, heads: readonly RefEntry[], window: JournalWindow, emit: Emit): void {
  const steps = journalSteps(source, heads, window, emit);
  while (!steps.next().done);
}

/**
 * Commits per journal task, and the most journals one task reads. Small journals share a task,
 * so the per-task hand-off (a round trip, a commit of the shard) is paid per 2,000 commits; and
 * a task reads its journals in storage order (`SliceReader`), so in a repository packed by git,
 * where journals interleave in time, the more journals a task holds, the more of each pack
 * window it uses (100k events in 800 journals, repacked, tasks read in turn: one journal after
 * another, 378 windows and 378k entries read on their own; in storage order, tasks of 128
 * journals, ~700 windows and 15k). Which journals a task gets is `JournalQueue`'s choice (on two
 * threads, 44k reads of the pack file fell to 24k). More journals per task cost more than their
 * windows save: each one's next commit is read at the start of every task holding it (1M events
 * repacked, 512 per task: slower).
 */
const TASK_COMMITS = 2000;
const TASK_SLICES = 128;

/**
 * The journal slices still to read, the one whose next commit is stored first coming out first
 * (unpacked ones before any), as `StorageOrderWalk` orders them within a task. Tasks taken from
 * it move through the packs together: where git packed the journals interleaved in time, each
 * task holds the journals furthest behind, whose next commits lie in the region the other tasks
 * read too, so a pack window loaded serves many of a task's entries; in packs written journal
 * by journal, a task takes the journals stored next.
 */
class JournalQueue {
  private readonly heap = new Heap<{ slice: JournalSlice; key: number; order: number }>(
    (a, b) => a.key < b.key || (a.key === b.key && a.order < b.order),
  );
  private added = 0;

  constructor(
    slices: readonly JournalSlice[],
    private readonly objects: Pick<ObjectStore, 'position'>,
  ) {
    this.add(slices);
  }

  get size(): number {
    return this.heap.size;
  }

  add(slices: readonly JournalSlice[]): void {
    for (const slice of slices) {
      const next = slice.frontier.find((entry) => !entry.hidden);
      this.heap.push({ slice, key: next ? storageKey(this.objects, next.oid) : -1, order: this.added++ });
    }
  }

  /** Up to `count` slices, stored first first. */
  take(count: number): JournalSlice[] {
    const taken: JournalSlice[] = [];
    while (taken.length < count) {
      const item = this.heap.pop();
      if (!item) break;
      taken.push(item.slice);
    }
    return taken;
  }
}

/**
 * The journal rows (as `journalRows` reads them) and the rows of the given message segments,
 * built in parallel on the compute pool (tasks `export-journal`, each up to TASK_COMMITS commits
 * of up to TASK_SLICES journals, and `export-messages`, grouped by `messageTasks`), each table's
 * filter applied in the workers. Each worker appends its rows to a staging shard of its own, which `staging`
 * adopts at the end, so this thread's cost does not grow with the rows; `progress` counts
 * journal commits read. Once `signal` is aborted no task is submitted and it returns when the
 * running ones are done (without the rest of the rows).
 */
export async function extractOnPool(
  pool: ComputePool,
  gitDir: string,
  reads: { heads: readonly RefEntry[]; window: JournalWindow; segments: readonly SegmentPlan[]; objects: Pick<ObjectStore, 'position'> },
  where: { commits?: Predicate; events?: Predicate; messages?: Predicate },
  staging: StagingArea,
  progress?: (done: ExtractProgress) => void,
  signal?: AbortSignal,
): Promise<void> {
  const { heads, window, segments, objects } = reads;
  if (window.after !== undefined || window.until !== undefined) throw new Error('extractOnPool takes no --since/--until window');
  // The workers read the pack indexes this thread already holds instead of loading their own
  // (the repository's and those of the object directories it borrows from).
  const indexes: Record<string, SharedIndex> = {};
  for (const dir of objectDirs(join(gitDir, 'objects'))) Object.assign(indexes, sharedIndexesUnder(join(dir, 'pack', sep)));
  const shards = new Set<string>();
  const done: ExtractProgress = { commits: 0, objects: 0, bytes: 0 };
  const count = (read: ReadTotals) => {
    done.objects += read.objects;
    done.bytes += read.bytes;
    progress?.(done);
  };
  const { commits, events, messages } = where;
  const journalWhere = { ...(commits ? { commits } : {}), ...(events ? { events } : {}) };
  // Messages are submitted first: their tasks are long, and the journal slices fill around them.
  const messagesDone = Promise.all(
    messageTasks(segments).map((task) =>
      pool
        .run({
          kind: 'export-messages',
          gitDir,
          segments: task,
          ...(messages ? { where: messages } : {}),
          shard: staging.path,
          shardFormat: staging.format,
          indexes,
        })
        .then((result) => {
          shards.add(result.shard);
          count(result.read);
        }),
    ),
  );
  // Awaited below; a failure while the journals are still read must not count as unhandled.
  messagesDone.catch(() => undefined);
  const queue = new JournalQueue(journalSlices(heads, window), objects);
  const active = new Set<Promise<void>>();
  // A task's failure is kept here, not left to the race below to see: piscina may settle two
  // tasks in one turn, and a race won by the other one would let the failed one leave the set
  // unseen (the export then completed without that task's rows).
  let failure: { error: unknown } | undefined;
  const submit = () => {
    const task: ExportJournalTask = {
      kind: 'export-journal',
      gitDir,
      // Grouped only while there are enough journals to keep every slot busy: long journals
      // each get a task of their own, so several are read at once.
      slices: queue.take(Math.max(1, Math.min(TASK_SLICES, Math.floor(queue.size / pool.maxInFlight)))),
      limit: TASK_COMMITS,
      where: journalWhere,
      shard: staging.path,
      shardFormat: staging.format,
      indexes,
    };
    const running: Promise<void> = pool
      .run(task)
      .then(
        (result) => {
          done.commits += result.count;
          shards.add(result.shard);
          count(result.read);
          // What the limit left goes back, by where it resumes.
          queue.add(result.rest);
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => active.delete(running));
    active.add(running);
  };
  try {
    for (;;) {
      // Once aborted (or failed) nothing more is submitted; the caller sees the signal when this returns.
      while (active.size < pool.maxInFlight && queue.size > 0 && !signal?.aborted && !failure) submit();
      if (active.size === 0) break;
      await Promise.race(active);
    }
  } finally {
    await Promise.allSettled([...active, messagesDone]);
  }
  if (failure) throw failure.error;
  await messagesDone;
  staging.adopt([...shards].sort());
}

/** Journal commits read on the pool so far, and the objects (and bytes) read for journals and messages. */
export interface ExtractProgress extends ReadTotals {
  commits: number;
}

/**
 * A message segment to read: its ref, its message count (its tip's `Segment-Count` trailer) and
 * the ULIDs of its first and last messages (the segment's own ULID, its tip's `Event-Id`), which
 * bound every ULID in it: a topic's ULIDs strictly increase (decision 0006).
 */
export interface SegmentPlan extends SegmentSlice {
  ref: string;
  count: number;
  first: string;
  last?: string;
}

/** The segments of the given topics, oldest first per topic: one commit read per segment, its tip. */
export function topicSegments(source: Source, topics: readonly string[]): SegmentPlan[] {
  return topics.flatMap((topic) =>
    listSegments(source.refs, topic).map(({ ref, ulid, tip }) => {
      const facts = messageFacts(source.objects, tip);
      return {
        topic,
        ref,
        tip,
        count: facts.meta?.message_count ?? TASK_MESSAGES,
        first: ulid,
        ...(facts.ulid ? { last: facts.ulid } : {}),
      };
    }),
  );
}

/** The first journal an earlier export recorded (ref -> head) that is gone or did not only grow since, if any. */
export function rewoundJournal(
  objects: ObjectStore,
  recorded: Readonly<Record<string, Oid>>,
  heads: readonly RefEntry[],
): string | undefined {
  const now = new Map(heads.map((head) => [head.name, head.oid]));
  return Object.keys(recorded).find((ref) => {
    const current = now.get(ref);
    return current === undefined || !descendsFrom(objects, current, recorded[ref] as Oid);
  });
}

/**
 * The segments a continued export reads: those new or grown since the earlier export recorded
 * theirs (`recorded`: segment ref -> tip; a segment is a commit chain that only grows). None
 * (`undefined`) when the earlier export recorded none, or a segment it recorded is gone (pruned)
 * or did not just grow (rewritten): its rows cannot be told apart, so the messages are read
 * again in full.
 */
export function changedSegments(
  objects: ObjectStore,
  recorded: Readonly<Record<string, string>> | undefined,
  segments: readonly SegmentPlan[],
): SegmentPlan[] | undefined {
  if (!recorded) return undefined;
  const present = new Set(segments.map((segment) => segment.ref));
  if (Object.keys(recorded).some((ref) => !present.has(ref))) return undefined;
  const changed = segments.filter((segment) => recorded[segment.ref] !== segment.tip);
  const rewritten = changed.some((segment) => {
    const earlier = recorded[segment.ref];
    return earlier !== undefined && !descendsFrom(objects, segment.tip, earlier);
  });
  return rewritten ? undefined : changed;
}

/**
 * Messages per `export-messages` task. A fresh worker reads its first messages about 3x slower
 * than a warm thread (its code is cold: 10k messages cost 0.6 s of CPU over two fresh workers,
 * 0.23 s in one warm thread), so segments share a task until it holds this many: only large
 * volumes of messages are spread over several workers.
 */
export const TASK_MESSAGES = 25_000;

/** Segments grouped into tasks of at least `perTask` messages (the last may hold fewer), largest first. */
export function messageTasks(
  segments: ReadonlyArray<Pick<SegmentPlan, 'topic' | 'tip' | 'count'>>,
  perTask = TASK_MESSAGES,
): SegmentSlice[][] {
  const tasks: SegmentSlice[][] = [];
  let task: SegmentSlice[] = [];
  let messages = 0;
  for (const { topic, tip, count } of [...segments].sort((a, b) => b.count - a.count)) {
    task.push({ topic, tip });
    messages += count;
    if (messages >= perTask) {
      tasks.push(task);
      task = [];
      messages = 0;
    }
  }
  if (task.length > 0) tasks.push(task);
  return tasks;
}

/**
 * The columns of a message row that follow from its ULID alone, so they never decrease along a
 * segment: the segment's first and last messages bound them (segment pruning relies on it).
 */
export function messageOrder(ulid: string): { ulid: string; ts: number; created_ts: number; updated_ts: number } {
  const ts = Math.floor(ulidTime(ulid) / 1000);
  return { ulid, ts, created_ts: ts, updated_ts: ts };
}

/** A message's envelope; `corrupt_object` naming the commit when it is not JSON. */
function messageEnvelope(bytes: Uint8Array, commit: Oid): { ns: string; type: string; payload: unknown } {
  try {
    return parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as {
      ns: string;
      type: string;
      payload: unknown;
    };
  } catch (err) {
    throw new GatosError('corrupt_object', `message envelope of commit ${commit}: ${(err as Error).message}`, { commit }, { cause: err });
  }
}

/** Every message of the given segments (in no particular order: the staging area orders rows). */
export function segmentRows(objects: ObjectStore, segments: readonly SegmentSlice[], emit: (row: Row) => void): void {
  for (const { topic, tip } of segments) {
    visitSegment(objects, tip, ({ ulid, commit, envelope }) => {
      const { ns, type, payload } = messageEnvelope(envelope, commit);
      emit({
        id: `${topic}@${ulid}`,
        content_id: contentId(envelope),
        topic,
        ns,
        kind: type,
        payload: jsonCell(payload),
        commit_id: commit,
        ...messageOrder(ulid),
      });
    });
  }
}
