/**
 * Commit-range walks (`git rev-list <tips> ^<stops>`): newest commit first by committer time,
 * commits reachable from a stop are excluded, and the walk can pause after a number of commits
 * and resume from its frontier — which is how long histories are cut into bounded batches that
 * worker threads scan one after another.
 *
 * @example
 *   let frontier = startFrontier([tip], [since]);
 *   const step = walkCommits(store, frontier, 5000, (oid, commit) => rows.push(oid));
 *   frontier = step.frontier; // empty when done
 */
import { type Commit, readCommit } from './object-codec.js';
import type { ObjectStore, Oid } from './ports.js';

/** A pending commit: `hidden` ones are reachable from a stop and only propagate that mark. */
export interface FrontierEntry {
  oid: Oid;
  hidden: boolean;
}

export function startFrontier(tips: readonly Oid[], stops: readonly Oid[] = []): FrontierEntry[] {
  return [...stops.map((oid) => ({ oid, hidden: true })), ...tips.map((oid) => ({ oid, hidden: false }))];
}

interface Queued extends FrontierEntry {
  time: number;
  commit: Commit;
}

/** A max-heap on committer time (ties: hidden first, so exclusions win races). */
class CommitQueue {
  private readonly items: Queued[] = [];

  get size(): number {
    return this.items.length;
  }

  private before(a: Queued, b: Queued): boolean {
    return a.time > b.time || (a.time === b.time && a.hidden && !b.hidden);
  }

  push(item: Queued): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i] as Queued, items[parent] as Queued)) break;
      [items[i], items[parent]] = [items[parent] as Queued, items[i] as Queued];
      i = parent;
    }
  }

  pop(): Queued | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l] as Queued, items[best] as Queued)) best = l;
        if (r < items.length && this.before(items[r] as Queued, items[best] as Queued)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best] as Queued, items[i] as Queued];
        i = best;
      }
    }
    return top;
  }

  entries(): FrontierEntry[] {
    return this.items.map(({ oid, hidden }) => ({ oid, hidden }));
  }

  get allHidden(): boolean {
    return this.items.every((item) => item.hidden);
  }
}

export interface WalkStep {
  /** Commits handed to the visitor in this step. */
  visited: number;
  /** Where to resume; empty when the range is exhausted. */
  frontier: FrontierEntry[];
}

/**
 * Visits up to `limit` commits of the range described by `frontier`, newest first. Commits
 * already marked as hidden or visited within this step are not visited twice.
 */
export function walkCommits(
  store: ObjectStore,
  frontier: readonly FrontierEntry[],
  limit: number,
  visit: (oid: Oid, commit: Commit) => void,
): WalkStep {
  const queue = new CommitQueue();
  const state = new Map<Oid, boolean>(); // oid -> hidden, for every commit queued in this step
  const enqueue = (oid: Oid, hidden: boolean): void => {
    const known = state.get(oid);
    if (known === true || (known === false && !hidden)) return;
    state.set(oid, hidden);
    const commit = readCommit(store, oid);
    queue.push({ oid, hidden, time: commit.committer.timestamp, commit });
  };
  for (const entry of frontier) enqueue(entry.oid, entry.hidden);
  let visited = 0;
  while (queue.size > 0 && visited < limit && !queue.allHidden) {
    const item = queue.pop() as Queued;
    const hidden = state.get(item.oid) === true;
    if (item.hidden !== hidden) continue; // superseded by a later "hidden" mark
    for (const parent of item.commit.parents) enqueue(parent, hidden);
    if (!hidden) {
      visit(item.oid, item.commit);
      visited++;
    }
  }
  return { visited, frontier: queue.size > 0 && !queue.allHidden ? queue.entries() : [] };
}

/**
 * Whether `commit` is `ancestor` or descends from it: the history only grew in between. A ref
 * rewound or rewritten (`git update-ref`, a forced push) does not.
 */
export function descendsFrom(store: Pick<ObjectStore, 'read'>, commit: Oid, ancestor: Oid): boolean {
  const seen = new Set<Oid>();
  const pending = [commit];
  for (let oid = pending.pop(); oid !== undefined; oid = pending.pop()) {
    if (oid === ancestor) return true;
    if (seen.has(oid)) continue;
    seen.add(oid);
    pending.push(...readCommit(store, oid).parents);
  }
  return false;
}
