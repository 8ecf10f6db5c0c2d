/**
 * The worker side of a parallel journal export (task `export-journal`): walk a slice of one
 * journal, build the `commits`/`events` rows, and keep only those the table's filter accepts —
 * the residual predicate runs next to the decoding.
 */
import { compileFilter, type RowTest } from '../dsl/evaluate.js';
import { parseFilter } from '../dsl/parse.js';
import type { ObjectStore } from '../engine/git/ports.js';
import { visitRows } from '../engine/scan/scan-range.js';
import type { ExportJournalResult, ExportJournalTask } from '../engine/scheduler/tasks.js';
import { addJournalRow } from './extract.js';
import { type Row, tableDef } from './tables.js';

const compiled = new Map<string, RowTest>();

function testFor(table: 'commits' | 'events', text: string | undefined): RowTest | undefined {
  if (text === undefined) return undefined;
  const key = `${table}:${text}`;
  let test = compiled.get(key);
  if (!test) {
    test = compileFilter(parseFilter(text), tableDef(table));
    compiled.set(key, test);
  }
  return test;
}

export function exportJournalRows(store: ObjectStore, task: ExportJournalTask): ExportJournalResult {
  const rows: { commits: Row[]; events: Row[] } = { commits: [], events: [] };
  const tests = { commits: testFor('commits', task.where.commits), events: testFor('events', task.where.events) };
  let count = 0;
  const frontier = visitRows(store, task.ref, task.frontier, task.limit, (row) => {
    count++;
    addJournalRow(row, task.ns, task.take, (table, out) => {
      const test = tests[table];
      if (!test || test(out)) rows[table].push(out);
    });
  });
  return { kind: 'export-journal', ref: task.ref, count, frontier, rows: new TextEncoder().encode(JSON.stringify(rows)) };
}
