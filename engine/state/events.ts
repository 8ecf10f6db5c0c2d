/**
 * The events a fold reads: every journal of a namespace, from given heads (optionally only what
 * lies after earlier heads), decoded and put in fold order. In this thread, or fanned out over
 * the compute pool for large ledgers.
 */
import { JOURNAL_PREFIX, parseJournalRef } from '../git/gatos-refs.js';
import type { ObjectStore, Oid, RefEntry, RefStore } from '../git/ports.js';
import { startFrontier } from '../git/walk.js';
import { type ScanRow, visitRows } from '../scan/scan-range.js';
import { decodeRows, scanRefs } from '../scan/scan-refs.js';
import type { ComputePool } from '../scheduler/pool.js';
import { compareEvents, type FoldEvent } from './fold-engine.js';

/** The namespace's journal refs and their tips, in ref order. */
export function journalHeads(refs: RefStore, ns: string): RefEntry[] {
  return refs.list(`${JOURNAL_PREFIX}${ns}/`).filter((entry) => parseJournalRef(entry.name)?.ns === ns);
}

function toEvent(row: ScanRow, ns: string): FoldEvent | undefined {
  if (row.envelopePath !== 'event/envelope.cbor') return undefined;
  const envelope = row.envelope as { type: string; ulid: string; actor: string; ts: string; payload: Record<string, unknown> };
  return {
    commit: row.commit,
    ref: row.ref,
    ns,
    actor: envelope.actor,
    ulid: envelope.ulid,
    type: envelope.type,
    ts: envelope.ts,
    payload: envelope.payload ?? {},
  };
}

export interface EventSource {
  objects: ObjectStore;
  gitDir: string;
  pool?: ComputePool;
}

/** Events reachable from `heads` but not from `since` (per ref), sorted in fold order. */
export async function collectEvents(
  source: EventSource,
  ns: string,
  heads: readonly RefEntry[],
  since: ReadonlyMap<string, Oid> = new Map(),
): Promise<FoldEvent[]> {
  const events: FoldEvent[] = [];
  const keep = (row: ScanRow) => {
    const event = toEvent(row, ns);
    if (event) events.push(event);
  };
  const todo = heads.filter((head) => since.get(head.name) !== head.oid);
  if (source.pool) {
    for await (const batch of scanRefs(source.pool, source.gitDir, todo, { since })) for (const row of decodeRows(batch)) keep(row);
  } else {
    for (const head of todo) {
      const stop = since.get(head.name);
      visitRows(source.objects, head.name, startFrontier([head.oid], stop ? [stop] : []), Number.MAX_SAFE_INTEGER, keep);
    }
  }
  return events.sort(compareEvents);
}
