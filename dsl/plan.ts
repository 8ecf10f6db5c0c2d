/**
 * Pushdown: from a table's predicate, the smallest set of refs to read. Only conjuncts at the
 * top level prune (an `or` could match anything): `ns = …` / `ns in (…)` and `actor = …` keep
 * only the matching journal refs of `events`, `ref = …` those of `commits`, `topic = …` the
 * matching topics of `messages`, and conditions on a message's ULID or time (`ulid`, `ts`,
 * `created_ts`, `updated_ts`) the segments whose messages all fall outside them. The whole
 * predicate still runs on every row read (the residual), so pruning can only skip work, never
 * change results.
 */
import { ulidTime } from '../engine/codec/ulid.js';
import { parseJournalRef } from '../engine/git/gatos-refs.js';
import type { RefEntry } from '../engine/git/ports.js';
import { type Row, type TableDef, tableDef } from '../exporter/tables.js';
import { type CompareOp, canonicalText, conjuncts, type Predicate } from './ast.js';
import { compileFilter, type RowTest } from './evaluate.js';

/** Values a column must take for the predicate to hold, when a top-level conjunct says so. */
export function requiredValues(predicate: Predicate | undefined, column: string): Set<string> | undefined {
  if (!predicate) return undefined;
  let allowed: Set<string> | undefined;
  for (const part of conjuncts(predicate)) {
    let values: string[] | undefined;
    if (part.kind === 'cmp' && part.op === '=' && part.path.length === 1 && part.path[0] === column && part.value.type === 'string')
      values = [part.value.value];
    if (part.kind === 'in' && part.path.length === 1 && part.path[0] === column && part.values.every((v) => v.type === 'string'))
      values = part.values.map((v) => (v as { value: string }).value);
    if (!values) continue;
    allowed = allowed ? new Set(values.filter((v) => allowed?.has(v))) : new Set(values);
  }
  return allowed;
}

export interface RefPlan {
  read: RefEntry[];
  pruned: Array<{ ref: string; reason: string }>;
}

/** Journal refs an `events` (or `commits`) predicate can match. */
export function planJournals(heads: readonly RefEntry[], table: 'events' | 'commits', predicate: Predicate | undefined): RefPlan {
  const namespaces = table === 'events' ? requiredValues(predicate, 'ns') : undefined;
  const actors = table === 'events' ? requiredValues(predicate, 'actor') : undefined;
  const refs = table === 'commits' ? requiredValues(predicate, 'ref') : undefined;
  const plan: RefPlan = { read: [], pruned: [] };
  for (const head of heads) {
    const parsed = parseJournalRef(head.name);
    if (namespaces && parsed && !namespaces.has(parsed.ns)) plan.pruned.push({ ref: head.name, reason: `ns ${parsed.ns} cannot match` });
    else if (actors && parsed && !actors.has(parsed.actor))
      plan.pruned.push({ ref: head.name, reason: `actor ${parsed.actor} cannot match` });
    else if (refs && !refs.has(head.name)) plan.pruned.push({ ref: head.name, reason: 'ref cannot match' });
    else plan.read.push(head);
  }
  return plan;
}

/** Topics a `messages` predicate can match. */
export function planTopics(
  topics: readonly string[],
  predicate: Predicate | undefined,
): { read: string[]; pruned: Array<{ topic: string; reason: string }> } {
  const allowed = requiredValues(predicate, 'topic');
  const read: string[] = [];
  const pruned: Array<{ topic: string; reason: string }> = [];
  for (const topic of topics) {
    if (allowed && !allowed.has(topic)) pruned.push({ topic, reason: 'topic cannot match' });
    else read.push(topic);
  }
  return { read, pruned };
}

/** A segment as planning sees it: the ULIDs of its first and last messages (no last: not a message). */
export interface SegmentBounds {
  ref: string;
  first: string;
  last?: string;
}

type SpanTest = (low: Row, high: Row) => boolean;

/**
 * Whether a top-level condition can hold for some row whose ordered columns lie between those of
 * `low` and `high`, answered with the evaluator's own comparisons. Undefined for a condition on
 * another column, on null or a boolean, or `!=`: those never prune.
 */
function spanTest(part: Predicate, def: TableDef, ordered: ReadonlySet<string>): SpanTest | undefined {
  if (part.kind !== 'cmp' && part.kind !== 'in') return undefined;
  if (part.path.length !== 1 || !ordered.has(part.path[0] as string)) return undefined;
  if (part.kind === 'in') {
    const each = part.values.map((value) => spanTest({ kind: 'cmp', path: part.path, op: '=', value }, def, ordered));
    if (each.some((test) => test === undefined)) return undefined;
    return (low, high) => each.some((test) => (test as SpanTest)(low, high));
  }
  if (part.value.type === 'null' || part.value.type === 'bool') return undefined;
  const holds = (op: CompareOp): RowTest => compileFilter({ ...part, op }, def);
  switch (part.op) {
    case '<':
    case '<=': {
      const test = holds(part.op);
      return (low) => test(low);
    }
    case '>':
    case '>=': {
      const test = holds(part.op);
      return (_, high) => test(high);
    }
    case '=': {
      const atMost = holds('<=');
      const atLeast = holds('>=');
      return (low, high) => atMost(low) && atLeast(high);
    }
    case '!=':
      return undefined;
  }
}

const instant = (ulid: string) => new Date(ulidTime(ulid)).toISOString();

/** Any ULID will do to learn which columns `order` fills. */
const ZERO_ULID = '0'.repeat(26);

/**
 * Segments a `messages` predicate can match. `order(ulid)` gives the columns of a message row
 * that follow from its ULID (so never decrease along a segment); each segment is checked at its
 * first and last message against the top-level conditions on those columns, and pruned when one
 * of them can hold nowhere in between (`ts >= 2025-06-01` prunes the segments that ended before).
 */
export function planSegments<S extends SegmentBounds>(
  segments: readonly S[],
  predicate: Predicate | undefined,
  order: (ulid: string) => Row,
): { read: S[]; pruned: Array<S & { reason: string }> } {
  const def = tableDef('messages');
  const ordered = new Set(Object.keys(order(ZERO_ULID)));
  const checks = (predicate ? conjuncts(predicate) : []).flatMap((part) => {
    const test = spanTest(part, def, ordered);
    return test ? [{ text: canonicalText(part), test }] : [];
  });
  const read: S[] = [];
  const pruned: Array<S & { reason: string }> = [];
  for (const segment of segments) {
    const { first, last } = segment;
    if (last === undefined || checks.length === 0) {
      read.push(segment);
      continue;
    }
    const low = order(first);
    const high = order(last);
    const failed = checks.find(({ test }) => !test(low, high));
    if (failed) pruned.push({ ...segment, reason: `its messages (${instant(first)} to ${instant(last)}) cannot match ${failed.text}` });
    else read.push(segment);
  }
  return { read, pruned };
}
