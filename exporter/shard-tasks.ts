/**
 * The worker side of a parallel export. Tasks `export-journal` and `export-messages` read a
 * slice of the repository, build its rows and keep only those the table's filter accepts — the
 * residual predicate runs next to the decoding. Rows go straight into this thread's staging
 * shard (a SQLite file, or sorted runs for Parquet), which the exporting thread's sinks read
 * when they write the tables. Tasks `export-parquet-table` and `export-sqlite-table` write one table from the staging
 * area, side by side with other tables.
 */

import { existsSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { canonicalText, type Predicate } from '../dsl/ast.js';
import { compileFilter, type RowTest } from '../dsl/evaluate.js';
import type { ReadTotals } from '../engine/git/ports.js';
import type { Repository } from '../engine/git/repository.js';
import type {
  ExportJournalResult,
  ExportJournalTask,
  ExportMessagesResult,
  ExportMessagesTask,
  ExportParquetTableResult,
  ExportParquetTableTask,
  ExportSqliteTableResult,
  ExportSqliteTableTask,
} from '../engine/scheduler/tasks.js';
import { addJournalRow, SliceReader, segmentRows } from './extract.js';
import { RunStaging } from './sorted-runs.js';
import { writeSqliteTable } from './sqlite-sink.js';
import { closingOnFailure, Staging, type StagingArea } from './staging.js';
import { type Row, SHARD_TABLES, selectColumns, tableDef } from './tables.js';

const compiled = new Map<string, RowTest>();

function testFor(table: string, predicate: Predicate | undefined): RowTest | undefined {
  if (predicate === undefined) return undefined;
  const key = `${table}:${canonicalText(predicate)}`;
  let test = compiled.get(key);
  if (!test) {
    test = compileFilter(predicate, tableDef(table));
    compiled.set(key, test);
  }
  return test;
}

/** This thread's SQLite staging shards by export (several when exports overlap in one process). */
const shards = new Map<string, Staging>();

/** This thread's shard of a Parquet export (its buffers are reused; every task leaves them empty). */
let runShard: RunStaging | undefined;

/** The shard a task's rows go to: `<prefix>-<thread>.sqlite`, or runs under `<prefix>-<thread>`. */
function shardOf(prefix: string, format: 'sqlite' | 'runs'): StagingArea {
  const path = `${prefix}-${threadId}`;
  if (format === 'runs') {
    if (runShard?.path !== path) {
      // Not the owner: the exporting thread removes the files once the export is written.
      runShard = new RunStaging(path, false);
      for (const table of SHARD_TABLES) runShard.create(tableDef(table));
    }
    // A task that failed left its rows unsorted here; they belong to no later export (a SQLite
    // shard's go with its file, which the failed export removes).
    runShard.discard();
    return runShard;
  }
  // A shard lives as long as its file: the exporting thread empties and removes the file once
  // the export is written (or failed), and a later export to the same output starts a new one.
  // (An idle worker waits for its next task without running timers, so it closes them here.)
  for (const [key, open] of shards) {
    if (existsSync(open.path)) continue;
    open.db.close();
    shards.delete(key);
  }
  let shard = shards.get(prefix);
  if (!shard) {
    const created = new Staging(`${path}.sqlite`);
    closingOnFailure(created.db, () => {
      for (const table of SHARD_TABLES) created.create(tableDef(table));
    });
    shard = created;
    shards.set(prefix, shard);
  }
  return shard;
}

/** What `repo` reads from now on, as a `ReadTotals` when `since()` is called. */
function readSince(repo: Repository): () => ReadTotals {
  const { objects, bytes } = repo.objects.readTotals;
  return () => ({ objects: repo.objects.readTotals.objects - objects, bytes: repo.objects.readTotals.bytes - bytes });
}

/** Commits (or sorts into runs) the task's rows before the result goes back: the exporting thread may read them next. */
function settle(shard: StagingArea): void {
  shard.flushAll();
  // Its page cache is not needed between tasks (rows are only appended): an idle worker holds none.
  if (shard instanceof Staging) shard.db.pragma('shrink_memory');
}

export function exportJournalRows(repo: Repository, task: ExportJournalTask): ExportJournalResult {
  const read = readSince(repo);
  const shard = shardOf(task.shard, task.shardFormat);
  const tests = { commits: testFor('commits', task.where.commits), events: testFor('events', task.where.events) };
  const reader = new SliceReader(repo.objects, task.slices);
  const count = reader.step(task.limit, (row, slice) =>
    addJournalRow(row, slice.ns, slice.take, (table, out) => {
      const test = tests[table];
      if (!test || test(out)) shard.insert(table, out);
    }),
  );
  const rest = reader.rest();
  settle(shard);
  return { kind: 'export-journal', count, rest, shard: shard.path, read: read() };
}

export function exportMessageRows(repo: Repository, task: ExportMessagesTask): ExportMessagesResult {
  const read = readSince(repo);
  const shard = shardOf(task.shard, task.shardFormat);
  const test = testFor('messages', task.where);
  let count = 0;
  segmentRows(repo.objects, task.segments, (row: Row) => {
    count++;
    if (!test || test(row)) shard.insert('messages', row);
  });
  settle(shard);
  return { kind: 'export-messages', count, shard: shard.path, read: read() };
}

export async function exportParquetTable(task: ExportParquetTableTask): Promise<ExportParquetTableResult> {
  // Loaded on use: Arrow and parquet-wasm are most of a worker's start-up otherwise.
  const { writeParquetTable } = await import('./parquet-sink.js');
  const def = selectColumns(tableDef(task.table), task.columns);
  return { kind: 'export-parquet-table', ...writeParquetTable(task.out, def, task.staging, task.batchSize) };
}

export function exportSqliteTable(task: ExportSqliteTableTask): ExportSqliteTableResult {
  const def = selectColumns(tableDef(task.table), task.columns);
  return { kind: 'export-sqlite-table', rows: writeSqliteTable(task.path, task.staging, def, task.create) };
}
