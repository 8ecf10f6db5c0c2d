/**
 * `gatos export`: extract the tables, write them through a sink, then the manifest (decision
 * 0009). The data goes to a temporary file first and is renamed into place; the manifest
 * `<out>.manifest.json` is written last with `complete: true`, so an interrupted export is never
 * taken for a complete one. When `<out>` already holds a complete export, journals are read only
 * past the journal heads it recorded, and rows are upserted.
 */
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { canonicalText, type Predicate } from '../dsl/ast.js';
import { compileFilter, type RowTest } from '../dsl/evaluate.js';
import { planJournals, planSegments, planTopics, type RefPlan } from '../dsl/plan.js';
import { blake3HexOfFile, contentIdOfJson } from '../engine/codec/blake3.js';
import { canonicalize } from '../engine/codec/canonical-json.js';
import { explorerRoot } from '../engine/codec/explorer-root.js';
import { createUlidFactory } from '../engine/codec/ulid.js';
import { environmentError, GatosError, hasCode } from '../engine/errors.js';
import { serializeCommit, serializeTree } from '../engine/git/object-codec.js';
import { hashObject, ZERO_OID } from '../engine/git/oid.js';
import type { Oid, RefEntry } from '../engine/git/ports.js';
import type { Clock } from '../engine/ledger/clock.js';
import { readActivePolicy } from '../engine/ledger/policy-store.js';
import { listTopics } from '../engine/messages/topics.js';
import type { ComputePool } from '../engine/scheduler/pool.js';
import type { WrittenFile } from '../engine/scheduler/tasks.js';
import { readCheckpoint, stateRef } from '../engine/state/checkpoint.js';
import { packageVersion } from '../engine/version.js';
import { makeDirs, removeLeftTemps, writeFileWhole } from '../engine/whole-writes.js';
import {
  ancestry,
  changedSegments,
  type ExtractProgress,
  extractOnPool,
  type JournalWindow,
  journalRefs,
  journalSteps,
  messageOrder,
  rewoundJournal,
  type SegmentPlan,
  type Source,
  segmentRows,
  topicSegments,
} from './extract.js';
import { type ExportManifest, readManifest } from './manifest.js';
import { checkReplaceable, lockOutput, outputPath } from './output-path.js';
import { governanceRows, jobRows, stateRows } from './snapshots.js';
import { RunStaging } from './sorted-runs.js';
import { SqliteSink, writeSqliteTable } from './sqlite-sink.js';
import { Staging, type StagingArea } from './staging.js';
import { type Row, SHARD_TABLES, selectColumns, TABLE_NAMES, type TableDef, tableDef } from './tables.js';

export const EXTRACTOR_VERSION = packageVersion();
export const EXTRACTOR = `gatos-exporter/${EXTRACTOR_VERSION}`;

export interface ExportOptions {
  format: 'sqlite' | 'parquet';
  out: string;
  tables?: readonly string[];
  /** table -> columns to keep (keys are always kept). */
  columns?: ReadonlyMap<string, readonly string[]>;
  /** A derived export binds to this namespace's current checkpoint. */
  stateNs?: string;
  /** Ignore a previous export at `out`. */
  full?: boolean;
  /** Window start: nothing reachable from this commit (exclusive). */
  since?: Oid;
  /** Window end: only commits reachable from this one. */
  until?: Oid;
  /**
   * Read journals and topics on this pool (needs `gitDir`), and write Parquet tables on it; rows
   * and bytes are the same as without.
   */
  pool?: ComputePool;
  /**
   * Awaited once extraction is over (the object store is not used again): a chance to free its
   * caches before the tables are sorted and written.
   */
  afterExtract?: () => void | Promise<void>;
  /** Awaited once the pool is not used again (after extraction for SQLite, after the tables for Parquet). */
  afterPool?: () => void | Promise<void>;
  gitDir?: string;
  /** table -> row predicate (`--where`); pushed down where it can prune, then run on every row. */
  where?: ReadonlyMap<string, Predicate>;
  batchSize?: number;
  clock: Clock;
  /**
   * Progress reports: every few seconds while rows are read, then per table once written (and
   * as it starts, or every few seconds of a Parquet table, when this thread writes it).
   */
  onProgress?: (progress: ExportProgress) => void;
  /**
   * Ends the export early once aborted (Ctrl-C): no task is submitted after that, running ones
   * finish, what was written is removed, and it fails with `cancelled`. In one thread a running
   * step ends first: an aborted signal is only seen between steps and between batches of rows.
   */
  signal?: AbortSignal;
}

/** A progress report of an export. */
export interface ExportProgress {
  /** `extract` while rows are read, then each table's name once it is written. */
  step: string;
  /** extract: rows staged (one thread) or journal commits read (on the pool); a table: rows written so far. */
  rows: number;
  /** extract: objects read so far and the bytes of their bodies. */
  objects?: number;
  bytes?: number;
  /** extract: the objects the repository holds, packed and loose (what `objects` approaches). */
  totalObjects?: number;
  /** extract: set on the step's last report. */
  done?: boolean;
}

/** Progress is reported at most this often while a step runs. */
const PROGRESS_MS = 2000;

/** A check that says yes at most once per `ms` (the first time `ms` after its creation). */
function every(ms: number): () => boolean {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}

/** Lets the event loop run once (a signal handler, a timer), then resumes. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Throws `cancelled` once the export's signal is aborted. */
function stopIfCancelled({ signal, out }: Pick<ExportOptions, 'signal' | 'out'>): void {
  if (signal?.aborted)
    throw new GatosError(
      'cancelled',
      `export to ${out} cancelled: its temporary files are removed, an earlier export there is left as it was`,
      { out },
    );
}

/** The git blob id of `<oid> <ref>\n` per journal head, in ref order: what `ledger_head` names. */
export function ledgerHeadOf(heads: readonly RefEntry[]): string {
  return hashObject('blob', Buffer.from(heads.map((h) => `${h.oid} ${h.name}\n`).join('')));
}

/** The repository facts an export binds to (recomputed by `verify --repo`). */
export function repoFacts(source: Source, stateNs?: string) {
  const heads = journalRefs(source.refs);
  const policy = readActivePolicy(source.objects, source.refs);
  const checkpoint = stateNs !== undefined ? source.refs.resolve(stateRef(stateNs)) : undefined;
  if (stateNs !== undefined && !checkpoint)
    throw new GatosError('state_not_found', `namespace ${stateNs} has no state checkpoint (run: gatos fold --ns ${stateNs})`, {
      ns: stateNs,
    });
  const derived = checkpoint ? readCheckpoint(source.objects, checkpoint) : undefined;
  return {
    heads,
    ledgerHead: ledgerHeadOf(heads),
    policyRoot: policy?.commit ?? ZERO_OID,
    stateRef: checkpoint ?? ZERO_OID,
    ...(derived ? { stateRoot: derived.stateRoot, foldRoot: derived.foldRoot } : {}),
  };
}

export interface ExportPlan {
  tables: string[];
  filters: Record<string, string>;
  /** The journal walk's bounds: nothing reachable from `since`, only what `until` reaches. */
  window: { since: Oid | null; until: Oid | null };
  /**
   * With an output path holding a SQLite export that is continued: the journals and message
   * segments read for it that have not changed since, and are skipped; when it could have been
   * continued but is not, why; else null.
   */
  continues: { journals_unchanged: number; segments_unchanged: number } | { restarted_because: string } | null;
  events: RefPlan;
  commits: RefPlan;
  /** Topics read and pruned, and the segments of those read. */
  messages: ReturnType<typeof planTopics> & { segments: ReturnType<typeof planSegments<SegmentPlan>> };
}

/** Topics, then the segments of those kept, that a `messages` predicate can match. */
function planMessages(source: Source, predicate: Predicate | undefined): ExportPlan['messages'] {
  const topics = planTopics(listTopics(source.refs), predicate);
  return { ...topics, segments: planSegments(topicSegments(source, topics.read), predicate, messageOrder) };
}

/** The manifest of the export already at the output (to continue it); a damaged one names the way out. */
function previousManifest(path: string): ExportManifest {
  try {
    return readManifest(path);
  } catch (err) {
    if (!hasCode(err, 'invalid_export')) throw err;
    const error = err as GatosError;
    throw new GatosError('invalid_export', `${error.message}; --full exports afresh and replaces it`, error.data, { cause: err });
  }
}

/** The tables to export: all by default; `--tables` naming none, or one twice, is refused. */
function wantedTables(options: Pick<ExportOptions, 'tables'>): readonly string[] {
  const wanted = options.tables ?? TABLE_NAMES;
  if (wanted.length === 0) throw new GatosError('invalid_argument', `--tables names no table; tables: ${TABLE_NAMES.join(', ')}`);
  const twice = wanted.find((name, i) => wanted.indexOf(name) !== i);
  if (twice !== undefined) throw new GatosError('invalid_argument', `--tables names ${twice} twice`, { table: twice });
  return wanted;
}

/** `--since` and `--until` must name commits of this repository. */
function checkWindow(source: Source, options: Pick<ExportOptions, 'since' | 'until'>): void {
  for (const [flag, oid] of [
    ['--since', options.since],
    ['--until', options.until],
  ] as const) {
    if (oid === undefined) continue;
    if (!/^[0-9a-f]{40}$/.test(oid) || !source.objects.has(oid) || source.objects.read(oid).type !== 'commit')
      throw new GatosError('invalid_argument', `${flag} must be a commit id of this repository, got ${JSON.stringify(oid)}`, { flag, oid });
  }
}

/** What an export to `options.out` takes over from the export already there. */
interface Continuation {
  /** The manifest of the export there, unless `--full` (its range's end starts the next range). */
  previous?: ExportManifest;
  /** How this export chooses its rows, as its manifest records them. */
  filters: ExportManifest['filters'];
  /** Rows are upserted into the file there, reading only what changed since the heads it recorded. */
  incremental: boolean;
  /** Why the export there, which could have been continued, is not. */
  restartedBecause?: string;
  /** Journal ref -> head already exported (empty unless `incremental`). */
  since: Map<string, Oid>;
  /**
   * The segments to read, those new or grown since the export there that the filter can match;
   * unset when every message is read (and replaces the table's rows).
   */
  segmentsToRead?: SegmentPlan[];
}

/**
 * Parquet datasets are rewritten whole; a SQLite file is continued and upserted when the rows it
 * holds were chosen the same way (else the file would mix two selections under one manifest) and
 * every journal they were read from only grew since (else rows of dropped commits would stay).
 */
function continuation(source: Source, options: ExportOptions, filters: Continuation['filters'], heads: readonly RefEntry[]): Continuation {
  const out = outputPath(options.out);
  const manifestPath = `${out}.manifest.json`;
  const previous = out !== '' && !options.full && existsSync(manifestPath) ? previousManifest(manifestPath) : undefined;
  const continuable = options.format === 'sqlite' && previous?.complete === true && previous.format === 'sqlite' && existsSync(out);
  const rewound = continuable ? rewoundJournal(source.objects, previous.ledger_heads ?? {}, heads) : undefined;
  const restartedBecause = !continuable
    ? undefined
    : canonicalize(previous.filters) !== canonicalize(filters)
      ? 'the export there was made with other filters'
      : rewound !== undefined
        ? `journal ${rewound} was rewound or rewritten since the export there`
        : undefined;
  const incremental = continuable && restartedBecause === undefined;
  return {
    ...(previous ? { previous } : {}),
    filters,
    incremental,
    ...(restartedBecause ? { restartedBecause } : {}),
    since: new Map<string, Oid>(incremental ? Object.entries(previous?.ledger_heads ?? {}) : []),
  };
}

/** The exported tables with the columns `--columns` keeps; a column or table it names that is not exported is refused. */
function exportedDefs(options: ExportOptions, wanted: readonly string[]): TableDef[] {
  const defs = wanted.map((name) => selectColumns(tableDef(name), options.columns?.get(name)));
  for (const name of options.columns?.keys() ?? [])
    if (!wanted.includes(name)) throw new GatosError('invalid_argument', `--columns names ${name}, which is not exported`);
  return defs;
}

/**
 * Checks the columns chosen and every filter against its table (an unknown column or an
 * inexact comparison is `UNSUPPORTED_FILTER`, audited under `refs/gatos/audit/export/<ulid>`)
 * and decides what to read.
 */
export function planExport(
  source: Source,
  options: ExportOptions,
  heads: readonly RefEntry[] = journalRefs(source.refs),
): { plan: ExportPlan; tests: Map<string, RowTest>; continued: Continuation } {
  const wanted = wantedTables(options);
  exportedDefs(options, wanted);
  checkWindow(source, options);
  const tests = new Map<string, RowTest>();
  for (const [table, predicate] of options.where ?? []) {
    if (!wanted.includes(table)) throw new GatosError('invalid_argument', `--where names ${table}, which is not exported`, { table });
    try {
      tests.set(table, compileFilter(predicate, tableDef(table)));
    } catch (err) {
      if (hasCode(err, 'UNSUPPORTED_FILTER')) auditUnsupported(source, options.clock, table, predicate, (err as Error).message);
      throw err;
    }
  }
  const none: RefPlan = { read: [], pruned: [] };
  const plan: ExportPlan = {
    tables: [...wanted],
    filters: Object.fromEntries([...(options.where ?? [])].map(([t, p]) => [t, canonicalText(p)])),
    window: { since: options.since ?? null, until: options.until ?? null },
    events: wanted.includes('events') ? planJournals(heads, 'events', options.where?.get('events')) : none,
    commits: wanted.includes('commits') ? planJournals(heads, 'commits', options.where?.get('commits')) : none,
    messages: wanted.includes('messages')
      ? planMessages(source, options.where?.get('messages'))
      : { read: [], pruned: [], segments: { read: [], pruned: [] } },
    continues: null,
  };
  const filters = {
    tables: plan.tables,
    columns: Object.fromEntries([...(options.columns ?? [])].map(([t, c]) => [t, [...c]])),
    where: plan.filters,
    since: options.since ?? null,
    until: options.until ?? null,
    state: options.stateNs ?? null,
  };
  const continued = continuation(source, options, filters, heads);
  if (continued.incremental) {
    // A continued export reads the segments that changed (pruned ones are recorded too:
    // unchanged, they still cannot match the same filter); none when the messages are read anew.
    const { read, pruned } = plan.messages.segments;
    const changed = changedSegments(source.objects, continued.previous?.message_segments, [...read, ...pruned]);
    if (changed) {
      const reread = new Set(changed);
      continued.segmentsToRead = read.filter((segment) => reread.has(segment));
    }
    const skipped = [...plan.events.read, ...plan.commits.read].filter((head) => continued.since.get(head.name) === head.oid);
    plan.continues = {
      journals_unchanged: new Set(skipped.map((head) => head.name)).size,
      segments_unchanged: continued.segmentsToRead ? read.length - continued.segmentsToRead.length : 0,
    };
  } else if (continued.restartedBecause) plan.continues = { restarted_because: continued.restartedBecause };
  return { plan, tests, continued };
}

function auditUnsupported(source: Source, clock: Clock, table: string, predicate: Predicate, reason: string): void {
  const now = clock();
  const record = { kind: 'export.unsupported_filter', table, filter: canonicalText(predicate), reason, ts: new Date(now).toISOString() };
  const blob = source.objects.write('blob', Buffer.from(`${canonicalize(record)}\n`));
  const tree = source.objects.write('tree', serializeTree([{ mode: '100644', name: 'audit.json', oid: blob }]));
  const who = { name: 'gatos-exporter', email: 'exporter@gatos.local', timestamp: Math.floor(now / 1000), timezone: '+0000' };
  const commit = source.objects.write(
    'commit',
    serializeCommit({ tree, parents: [], author: who, committer: who, message: `export refused: unsupported filter on ${table}\n` }),
  );
  const ulid = createUlidFactory(clock)();
  source.refs.transaction().create(`refs/gatos/audit/export/${ulid}`, commit).commit();
}

const fileEntry = (full: string, path: string) => {
  const { hex, size } = blake3HexOfFile(full);
  return { path, blake3: `blake3:${hex}`, size };
};

/**
 * Waits for every table being written, then fails with the first failure, if any: once this
 * settles nothing writes into the files the caller may remove.
 */
async function settled<T>(writes: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(writes);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

export async function runExport(source: Source, given: ExportOptions): Promise<ExportManifest> {
  const options = { ...given, out: outputPath(given.out) };
  const wanted = wantedTables(options);
  // Checked again by planExport, but here before anything is created.
  const defs = exportedDefs(options, wanted);
  checkWindow(source, options);
  makeDirs(dirname(options.out));
  const unlock = lockOutput(options.out);
  try {
    checkReplaceable(options.out);
    return await exportLocked(source, options, wanted, defs);
  } finally {
    unlock();
  }
}

/** `runExport` once its options are checked and its output path is locked. */
async function exportLocked(source: Source, options: ExportOptions, wanted: readonly string[], defs: TableDef[]): Promise<ExportManifest> {
  const facts = repoFacts(source, options.stateNs);
  const { plan, tests, continued } = planExport(source, options, facts.heads);
  const { previous, filters, incremental, restartedBecause, since } = continued;
  const manifestPath = `${options.out}.manifest.json`;

  const partial = `${options.out}.partial`;
  /** Where the export this one replaces goes while it is removed in the background. */
  const replacedOut = `${options.out}.replaced`;
  const rootFile = `${options.out}.explorer-root.txt`;
  // A crashed export's leftovers (the output so far, tables written apart, an output moved aside) go first.
  const removePartial = () => {
    rmSync(partial, { recursive: true, force: true });
    for (const table of SHARD_TABLES) rmSync(`${partial}.${table}`, { force: true });
    rmSync(replacedOut, { recursive: true, force: true });
  };
  removePartial();
  // Left by an export killed while it wrote its manifest or Explorer-Root file (this one holds the lock).
  removeLeftTemps(manifestPath, rootFile);
  if (incremental) copyFileSync(options.out, partial);
  // The old manifest goes before anything changes, so a crash never leaves it beside a changed
  // output; a failure this export catches puts it back while `out` is still the one it describes.
  const oldManifest = existsSync(manifestPath) ? readFileSync(manifestPath) : undefined;
  rmSync(manifestPath, { force: true });
  let replaced = false;
  const sqlite = options.format === 'sqlite';
  const staging: StagingArea = sqlite ? new Staging(`${options.out}.staging`) : new RunStaging(`${options.out}.staging`);
  const parquetFiles: WrittenFile[] = [];
  const counts: Record<string, number> = {};
  let pooled: Promise<void> | undefined;
  /** Temporary files being removed on libuv's threads (awaited before the manifest is written). */
  const removals: Promise<void>[] = [];
  try {
    const needs = (name: string) => defs.some((d) => d.name === name);
    // Rows go to the staging area as they are extracted (filtered there); sinks read them back in key order.
    for (const def of defs) staging.create(tableDef(def.name));
    let extracted = 0;
    const reportDue = every(PROGRESS_MS);
    const totalObjects = options.onProgress ? source.objects.storedObjects?.() : undefined;
    // What the pool has read so far; this thread's own reads (in one thread: all of them) add to it.
    let pooledRead: ExtractProgress = { commits: 0, objects: 0, bytes: 0 };
    const report = (done = false) => {
      const own = source.objects.readTotals;
      options.onProgress?.({
        step: 'extract',
        rows: pooledRead.commits + extracted,
        objects: pooledRead.objects + (own?.objects ?? 0),
        bytes: pooledRead.bytes + (own?.bytes ?? 0),
        ...(totalObjects !== undefined ? { totalObjects } : {}),
        ...(done ? { done } : {}),
      });
    };
    // Between steps in this thread: the event loop turns (a signal handler runs), then a
    // cancellation is acted on.
    const breathe = async () => {
      await turn();
      stopIfCancelled(options);
    };
    const stage = (table: string, row: Row) => {
      const test = tests.get(table);
      if (test && !test(row)) return;
      staging.insert(table, row);
      if (++extracted % 1000 !== 0) return;
      stopIfCancelled(options);
      if (reportDue()) report();
    };
    const names = (refPlan: RefPlan) => new Set(refPlan.read.map((r) => r.name));
    const window: JournalWindow = {
      since,
      wanted: { commits: needs('commits') ? names(plan.commits) : new Set(), events: needs('events') ? names(plan.events) : new Set() },
      ...(options.since ? { after: options.since } : {}),
      ...(options.until ? { until: ancestry(source.objects, options.until) } : {}),
    };
    // A continued export reads the segments that changed (and can match) and upserts their rows;
    // otherwise the messages are read in full and replace the table's rows.
    const segments = continued.segmentsToRead ?? plan.messages.segments.read;
    const keepsRows = (name: string) =>
      name === 'commits' || name === 'events' || (name === 'messages' && continued.segmentsToRead !== undefined);
    if (options.pool && options.gitDir && !options.since && !options.until) {
      // Journals and topics are read on the pool, filters applied in the workers (they travel
      // parsed, as plain data: workers compile them without loading the parser).
      const where: { commits?: Predicate; events?: Predicate; messages?: Predicate } = {};
      for (const table of ['commits', 'events', 'messages'] as const) {
        const predicate = options.where?.get(table);
        if (predicate) where[table] = predicate;
      }
      // Opening the packs here puts their indexes in shared memory, which the workers then reuse.
      if (facts.heads[0]) source.objects.has(facts.heads[0].oid);
      pooled = extractOnPool(
        options.pool,
        options.gitDir,
        { heads: facts.heads, window, segments, objects: source.objects },
        where,
        staging,
        (read) => {
          pooledRead = read;
          if (reportDue()) report();
        },
        options.signal,
      );
      // Failures surface where it is awaited; the snapshot tables below are read meanwhile.
      pooled.catch(() => undefined);
      // One turn of the event loop, so the first tasks reach the workers before this thread is busy.
      await turn();
    } else {
      // In steps, with a turn of the event loop between them: a signal is seen within one.
      const steps = journalSteps(source, facts.heads, window, stage);
      while (!steps.next().done) await breathe();
      for (const segment of segments) {
        segmentRows(source.objects, [segment], (row) => stage('messages', row));
        await breathe();
      }
    }
    if (needs('state_nodes') || needs('pointers')) {
      const state = stateRows(source);
      for (const table of ['state_nodes', 'pointers'] as const) if (needs(table)) for (const row of state[table]) stage(table, row);
    }
    if (needs('jobs')) for (const row of jobRows(source, options.clock())) stage('jobs', row);
    if (defs.some((d) => d.name.startsWith('governance_'))) {
      for (const [table, rows] of Object.entries(governanceRows(source))) if (needs(table)) for (const row of rows) stage(table, row);
    }
    const fields = {
      ledgerHead: facts.ledgerHead,
      policyRoot: facts.policyRoot,
      ...(facts.foldRoot ? { foldRoot: facts.foldRoot } : {}),
      extractorVersion: EXTRACTOR,
    };
    const root = explorerRoot(fields);
    const now = Math.floor(options.clock() / 1000);
    if (needs('export_info'))
      stage('export_info', {
        state_ref: facts.stateRef,
        commit_start: previous?.commit_range.end ?? ZERO_OID,
        commit_end: facts.ledgerHead,
        shape_root: facts.stateRoot ?? null,
        ledger_head: facts.ledgerHead,
        policy_root: facts.policyRoot,
        explorer_root: root,
        extractor_version: EXTRACTOR,
        filters: canonicalize(filters),
        created_ts: now,
        updated_ts: now,
      });

    await pooled;
    stopIfCancelled(options);
    staging.flushAll();
    report(true);
    await options.afterExtract?.();
    // Tables on the pool are written side by side (all awaited before a failure is thrown); in
    // this thread one after another, the event loop turning before each, so a signal is seen.
    const eachTable = async <T, R>(items: readonly T[], write: (item: T, i: number) => Promise<R>): Promise<R[]> => {
      if (options.pool) return settled(items.map(write));
      const results: R[] = [];
      for (const [i, item] of items.entries()) {
        await breathe();
        results.push(await write(item, i));
      }
      return results;
    };
    if (sqlite) {
      // The tables workers fill (journals, messages) are the large ones: the first is written
      // into the output (its indexes built once its rows are in), each other one into a file of
      // its own, then moved in as it is. The same steps in any thread, side by side on the pool,
      // so the same bytes.
      const large = incremental ? [] : defs.filter((def) => SHARD_TABLES.includes(def.name));
      const sink = new SqliteSink(partial, EXTRACTOR_VERSION);
      try {
        for (const def of defs) sink.prepare(def, !keepsRows(def.name), def !== large[0]);
      } finally {
        sink.close();
      }
      const view = staging.view();
      const sideFile = (i: number, def: TableDef) => (i === 0 ? partial : `${partial}.${def.name}`);
      const written = await eachTable(large, async (def, i) => {
        let rows: number;
        if (options.pool) {
          const columns = options.columns?.get(def.name);
          const task = { kind: 'export-sqlite-table', staging: view, path: sideFile(i, def), table: def.name, create: i > 0 } as const;
          rows = (await options.pool.run(columns ? { ...task, columns: [...columns] } : task)).rows;
        } else {
          // One SQLite statement, silent until it returns (minutes for tens of millions of
          // rows): its start is reported, which the CLI repeats while it runs.
          options.onProgress?.({ step: def.name, rows: 0 });
          rows = writeSqliteTable(sideFile(i, def), view, def, i > 0);
        }
        options.onProgress?.({ step: def.name, rows });
        return rows;
      });
      await options.afterPool?.();
      const out = new SqliteSink(partial).attach(view);
      try {
        // The small tables first: then nothing reads the staging area any more, and its files
        // (all the rows, in shards or not) are removed on other threads while this one moves
        // the large tables in.
        for (const def of defs) {
          if (large.includes(def)) continue;
          counts[def.name] = out.fill(def, incremental && keepsRows(def.name));
          options.onProgress?.({ step: def.name, rows: counts[def.name] as number });
        }
        out.detach();
        removals.push(staging.closeInBackground());
        for (const [i, def] of large.entries()) {
          counts[def.name] = written[i] as number;
          if (i === 0) continue;
          out.transfer(sideFile(i, def), def.name);
          removals.push(rm(sideFile(i, def), { force: true }));
        }
      } finally {
        out.close();
      }
    } else {
      const batchSize = options.batchSize ?? 50_000;
      const view = staging.view();
      const written = await eachTable(defs, async (def) => {
        let files: { files: WrittenFile[]; rows: number };
        if (options.pool) {
          // Tables are independent datasets: the workers write them side by side.
          const columns = options.columns?.get(def.name);
          const task = { kind: 'export-parquet-table', staging: view, out: partial, table: def.name, batchSize } as const;
          files = await options.pool.run(columns ? { ...task, columns: [...columns] } : task);
        } else {
          // Loaded on use: Arrow and parquet-wasm are most of the exporter's start-up.
          const { writeParquetTable } = await import('./parquet-sink.js');
          // One thread writes the tables one after another: a long one reports as it goes.
          const due = every(PROGRESS_MS);
          files = writeParquetTable(partial, def, view, batchSize, (rows) => {
            if (due()) options.onProgress?.({ step: def.name, rows });
          });
        }
        options.onProgress?.({ step: def.name, rows: files.rows });
        return files;
      });
      for (const [i, def] of defs.entries()) {
        const result = written[i] as { files: WrittenFile[]; rows: number };
        parquetFiles.push(...result.files);
        counts[def.name] = result.rows;
      }
      await options.afterPool?.();
      removals.push(staging.closeInBackground());
    }
    stopIfCancelled(options);
    // The export replaced is moved aside and removed on libuv's threads while this one's files
    // are hashed (a 100 MB file took 15-50 ms to unlink, in the serial end of every re-export).
    const movedAside = moveAside(options.out, replacedOut);
    try {
      renameSync(partial, options.out);
    } catch (err) {
      if (movedAside) renameSync(replacedOut, options.out);
      throw err;
    }
    if (movedAside) removals.push(rm(replacedOut, { recursive: true, force: true }));
    replaced = true;
    writeFileWhole(rootFile, `${root}\n`);
    const has = (name: string) => wanted.includes(name);
    const manifest: ExportManifest = {
      format: options.format,
      state_ref: facts.stateRef,
      commit_range: { start: options.since ?? previous?.commit_range.end ?? ZERO_OID, end: options.until ?? facts.ledgerHead },
      tables: {
        commits: has('commits'),
        events: has('events'),
        state_nodes: has('state_nodes'),
        pointers: has('pointers'),
        jobs: has('jobs'),
        governance: TABLE_NAMES.filter((n) => n.startsWith('governance_')).some(has),
      },
      created_at: `${new Date(options.clock()).toISOString().slice(0, 19)}Z`,
      extractor_version: EXTRACTOR,
      ledger_head: facts.ledgerHead,
      ledger_heads: Object.fromEntries(facts.heads.map((h) => [h.name, h.oid])),
      ...(needs('messages')
        ? {
            message_segments: Object.fromEntries(
              [...plan.messages.segments.read, ...plan.messages.segments.pruned].map((segment) => [segment.ref, segment.tip]),
            ),
          }
        : {}),
      policy_root: facts.policyRoot,
      ...(facts.stateRoot ? { state_root: facts.stateRoot, fold_root: facts.foldRoot as string } : {}),
      explorer_root: root,
      filters,
      filters_digest: contentIdOfJson(filters),
      exported_tables: defs.map((d) => d.name),
      row_counts: counts,
      files: [
        ...(sqlite
          ? [fileEntry(options.out, basename(options.out))]
          : parquetFiles.map((file) => ({ ...file, path: join(basename(options.out), file.path) }))),
        fileEntry(rootFile, basename(rootFile)),
      ],
      incremental: incremental === true,
      ...(restartedBecause ? { restarted_because: restartedBecause } : {}),
      complete: true,
    };
    // Temporary files removed (while the output was renamed and hashed), then the manifest:
    // whole or absent, since one cut short by a full disk would not even read as incomplete.
    await settled(removals);
    writeFileWhole(manifestPath, `${canonicalize(manifest)}\n`);
    return manifest;
  } catch (err) {
    // Workers may still be appending to their shards, and files may be on their way out: both
    // finish before the rest goes.
    await Promise.allSettled([pooled, ...removals]);
    staging.close();
    removePartial();
    if (oldManifest && !replaced) writeFileWhole(manifestPath, oldManifest);
    throw exportFailure(err, options.out);
  }
}

/** Renames `path` (a file, directory or link) to `aside`; false when there is nothing at `path`. */
function moveAside(path: string, aside: string): boolean {
  try {
    renameSync(path, aside);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The machine's refusals as their own codes. A full disk that SQLite reports names no file, so
 * the message names the places an export writes to.
 */
function exportFailure(err: unknown, out: string): unknown {
  const error = err instanceof GatosError ? err : environmentError(err);
  if (error?.code !== 'disk_full' || error.data.path !== undefined) return error ?? err;
  return new GatosError(
    'disk_full',
    `no space left on the device: the export writes beside ${out}, and SQLite sorts in its temporary directory (SQLITE_TMPDIR or TMPDIR, else /var/tmp or /tmp)`,
    { out },
    { cause: err },
  );
}
