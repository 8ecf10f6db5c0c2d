/**
 * Every message that crosses the worker boundary, in one place. Tasks and results are plain
 * data; large results travel as transferable byte arrays (moved, not copied).
 */

import type { Predicate } from '../../dsl/ast.js';
import type { SerializedError } from '../errors.js';
import type { SharedIndex } from '../git/pack-index.js';
import type { ReadTotals } from '../git/ports.js';
import type { FrontierEntry } from '../git/walk.js';
import type { EventEnvelope } from '../ledger/envelope.js';

/** Hash many byte strings: `data` holds them back to back, `offsets[i]..offsets[i+1]` is item i. */
export interface HashTask {
  kind: 'hash';
  algo: 'blake3' | 'sha1';
  data: Uint8Array;
  offsets: Uint32Array;
}
export interface HashResult {
  kind: 'hash';
  /** Digests back to back (32 bytes each for BLAKE3, 20 for SHA-1). */
  digests: Uint8Array;
}

/** The BLAKE3 of whole files, read in chunks by the worker (export verify). */
export interface HashFilesTask {
  kind: 'hash-files';
  paths: string[];
}
export interface HashFilesResult {
  kind: 'hash-files';
  /** Per path, in order: hex digest and size in bytes. */
  files: Array<{ hex: string; size: number }>;
}

/** Canonicalize JSON documents (RFC 8785) and compute their `blake3:` content ids. */
export interface CanonicalizeTask {
  kind: 'canonicalize';
  documents: string[];
}
export interface CanonicalizeResult {
  kind: 'canonicalize';
  /** Canonical UTF-8 bytes back to back, delimited by `offsets` (length n + 1). */
  canonical: Uint8Array;
  offsets: Uint32Array;
  ids: string[];
}

/** Decode up to `limit` commits of one ref's range, resuming from `frontier`. */
export interface ScanTask {
  kind: 'scan';
  gitDir: string;
  ref: string;
  frontier: FrontierEntry[];
  limit: number;
}
export interface ScanResult {
  kind: 'scan';
  ref: string;
  count: number;
  frontier: FrontierEntry[];
  /** The rows as one UTF-8 JSON array (see ScanRow). */
  rows: Uint8Array;
}

/** Build `count` journal commits of one fixture ref starting at event `start` on top of `parent`. */
export interface FixtureChunkTask {
  kind: 'fixture-chunk';
  seed: number;
  refIndex: number;
  ref: string;
  actor: string;
  ns: string;
  start: number;
  count: number;
  parent: string | null;
  /** Event number -> time in seconds; events of a ref are spread over time deterministically. */
  baseTime: number;
  /** zlib level for the objects; 0 stores them uncompressed (fastest). */
  compression: number;
}
export interface FixtureChunkResult {
  kind: 'fixture-chunk';
  tip: string;
  /** Prepared objects back to back: 20-byte id, 1-byte type code, u32 size, u32 length, deflated bytes. */
  objects: Uint8Array;
  count: number;
}

/** Encode, sign and build the trees of journal events (the tip-independent part of appends). */
export interface SealEventsTask {
  kind: 'seal-events';
  /** Actor -> PKCS#8 PEM private key. */
  keys: Record<string, string>;
  envelopes: EventEnvelope[];
  /** zlib level for the prepared objects. */
  level: number;
}
export interface SealEventsResult {
  kind: 'seal-events';
  cids: string[];
  signatures: string[];
  roots: string[];
  /** Three prepared objects per event (blob, `event/` tree, root tree), see `packPrepared`. */
  objects: Uint8Array;
}

/** Compress objects whose ids are already known (the writer appends them to a pack). */
export interface PrepareObjectsTask {
  kind: 'prepare-objects';
  /** Raw objects in the `packPrepared` framing with the body in place of deflated bytes (`packRawObjects`). */
  objects: Uint8Array;
  level: number;
}
export interface PrepareObjectsResult {
  kind: 'prepare-objects';
  /** Prepared objects, see `packPrepared`. */
  objects: Uint8Array;
}

/** Part of one journal still to read: its ref, what its rows go to, and where the walk resumes. */
export interface JournalSlice {
  ref: string;
  ns: string;
  take: { commits: boolean; events: boolean };
  frontier: FrontierEntry[];
}

/**
 * Export rows of up to `limit` commits, read from the slices together in storage order (several
 * journals make one task; see `SliceReader`): the `commits` and `events` rows the export wants, with each table's filter
 * (parsed, as plain data) applied in the worker, so rows that cannot match never cross the
 * thread boundary. The worker appends them to its own staging shard: `<shard>-<thread>.sqlite`
 * (tables `commits`, `events`, `messages`), or sorted runs under `<shard>-<thread>` for a
 * Parquet export.
 */
export interface ExportJournalTask {
  kind: 'export-journal';
  gitDir: string;
  slices: JournalSlice[];
  limit: number;
  where: { commits?: Predicate; events?: Predicate };
  shard: string;
  shardFormat: 'sqlite' | 'runs';
  /** Pack indexes the exporting thread already holds in shared memory (one copy for all threads). */
  indexes?: Record<string, SharedIndex>;
}
export interface ExportJournalResult {
  kind: 'export-journal';
  /** Commits read. */
  count: number;
  /** What the limit left: the slice being read (with its frontier) and those not started. */
  rest: JournalSlice[];
  /** The staging shard the rows were appended to. */
  shard: string;
  /** Objects (and their bytes) the task read: progress reports. */
  read: ReadTotals;
}

/** A message segment to read: its topic and its tip commit. */
export interface SegmentSlice {
  topic: string;
  tip: string;
}
/** Every message of some segments as `messages` rows, filtered and appended to the worker's shard. */
export interface ExportMessagesTask {
  kind: 'export-messages';
  gitDir: string;
  segments: SegmentSlice[];
  where?: Predicate;
  shard: string;
  shardFormat: 'sqlite' | 'runs';
  indexes?: Record<string, SharedIndex>;
}
export interface ExportMessagesResult {
  kind: 'export-messages';
  count: number;
  shard: string;
  read: ReadTotals;
}

/** A staging area another thread reads (plain data): its path, its tables, its workers' shards in order. */
export interface StagingRef {
  path: string;
  tables: string[];
  shards: string[];
}

/**
 * One table of a Parquet export, written by a worker from the staging area's sorted runs (its
 * own and its shards'): the same function and rows as in the exporting thread, so the same
 * bytes. Tables are independent files, so they are written side by side.
 */
export interface ExportParquetTableTask {
  kind: 'export-parquet-table';
  staging: StagingRef;
  /** The dataset directory (the export's partial output). */
  out: string;
  table: string;
  /** The exported columns (all when absent). */
  columns?: string[];
  batchSize: number;
}
/** A file an export wrote, as its manifest lists it (`blake3:<hex>`). */
export interface WrittenFile {
  path: string;
  blake3: string;
  size: number;
}
export interface ExportParquetTableResult {
  kind: 'export-parquet-table';
  /** Files written, relative to `out`. */
  files: WrittenFile[];
  rows: number;
}

/**
 * One large table of a SQLite export written from the staging area into `path` (the output
 * itself, or a file of its own to be moved in afterwards), while others are written alongside.
 */
export interface ExportSqliteTableTask {
  kind: 'export-sqlite-table';
  staging: StagingRef;
  path: string;
  table: string;
  columns?: string[];
  /** Create the table in `path` first (a file of its own). */
  create: boolean;
}
export interface ExportSqliteTableResult {
  kind: 'export-sqlite-table';
  rows: number;
}

export type Task =
  | HashTask
  | HashFilesTask
  | CanonicalizeTask
  | ScanTask
  | FixtureChunkTask
  | SealEventsTask
  | PrepareObjectsTask
  | ExportJournalTask
  | ExportMessagesTask
  | ExportParquetTableTask
  | ExportSqliteTableTask;
export type TaskResult =
  | HashResult
  | HashFilesResult
  | CanonicalizeResult
  | ScanResult
  | FixtureChunkResult
  | SealEventsResult
  | PrepareObjectsResult
  | ExportJournalResult
  | ExportMessagesResult
  | ExportParquetTableResult
  | ExportSqliteTableResult;
export type ResultOf<T extends Task> = Extract<TaskResult, { kind: T['kind'] }>;

/** What a worker sends back: a result, or an error that keeps its code across the boundary. */
export type WorkerReply<R extends TaskResult = TaskResult> = { ok: true; result: R } | { ok: false; error: SerializedError };
