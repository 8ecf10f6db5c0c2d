/**
 * The worker side of a parallel journal export (task `export-journal`): walk a slice of one
 * journal, build the `commits`/`events` rows, and keep only those the table's filter accepts —
 * the residual predicate runs next to the decoding. With a shard, the rows go straight into
 * this thread's staging file, so the exporting thread never handles them one by one.
 */

import { existsSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { canonicalText, type Predicate } from '../dsl/ast.js';
import { compileFilter, type RowTest } from '../dsl/evaluate.js';
import type { ObjectStore } from '../engine/git/ports.js';
import { visitRows } from '../engine/scan/scan-range.js';
import type { ExportJournalResult, ExportJournalTask } from '../engine/scheduler/tasks.js';
import { addJournalRow } from './extract.js';
import { Staging } from './staging.js';
import { type Row, tableDef } from './tables.js';

const compiled = new Map<string, RowTest>();

function testFor(table: 'commits' | 'events', predicate: Predicate | undefined): RowTest | undefined {
  if (predicate === undefined) return undefined;
  const key = `${table}:${canonicalText(predicate)}`;
  let test = compiled.get(key);
  if (!test) {
    test = compileFilter(predicate, tableDef(table));
    compiled.set(key, test);
  }
  return test;
}

/** This thread's staging shards by export (several when exports overlap in one process). */
const shards = new Map<string, Staging>();

function shardOf(prefix: string): Staging {
  // A shard lives as long as its file: the exporting thread removes the file once the export
  // has absorbed it (or failed), and a later export to the same output starts a new one.
  for (const [key, open] of shards) {
    if (existsSync(open.path)) continue;
    open.db.close();
    shards.delete(key);
  }
  let shard = shards.get(prefix);
  if (!shard) {
    shard = new Staging(`${prefix}-${threadId}.sqlite`, { shared: true });
    shard.create(tableDef('commits'));
    shard.create(tableDef('events'));
    shards.set(prefix, shard);
  }
  return shard;
}

export function exportJournalRows(store: ObjectStore, task: ExportJournalTask): ExportJournalResult {
  const rows: { commits: Row[]; events: Row[] } = { commits: [], events: [] };
  const shard = task.shard === undefined ? undefined : shardOf(task.shard);
  const tests = { commits: testFor('commits', task.where.commits), events: testFor('events', task.where.events) };
  let count = 0;
  const frontier = visitRows(store, task.ref, task.frontier, task.limit, (row) => {
    count++;
    addJournalRow(row, task.ns, task.take, (table, out) => {
      const test = tests[table];
      if (test && !test(out)) return;
      if (shard) shard.insert(table, out);
      else rows[table].push(out);
    });
  });
  if (shard) {
    // Committed before the result goes back: the exporting thread may read the file next.
    shard.flushAll();
    // Its page cache is not needed between tasks (rows are only appended): an idle worker holds none.
    shard.db.pragma('shrink_memory');
    return { kind: 'export-journal', ref: task.ref, count, frontier, rows: new Uint8Array(0), shard: shard.path };
  }
  return { kind: 'export-journal', ref: task.ref, count, frontier, rows: new TextEncoder().encode(JSON.stringify(rows)) };
}
