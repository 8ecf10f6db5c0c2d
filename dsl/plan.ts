/**
 * Pushdown: from a table's predicate, the smallest set of refs to read. Only conjuncts at the
 * top level prune (an `or` could match anything): `ns = …` / `ns in (…)` and `actor = …` keep
 * only the matching journal refs of `events`, `ref = …` those of `commits`, `topic = …` the
 * matching topics of `messages`. The whole predicate still runs on every row read (the residual),
 * so pruning can only skip work, never change results.
 */
import { parseJournalRef } from '../engine/git/gatos-refs.js';
import type { RefEntry } from '../engine/git/ports.js';
import { conjuncts, type Predicate } from './ast.js';

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
