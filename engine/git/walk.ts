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
import { Heap } from '../heap.js';
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

/** Pending commits, newest committer time first (ties: hidden first, so exclusions win races). */
class CommitQueue extends Heap<Queued> {
  constructor() {
    super((a, b) => a.time > b.time || (a.time === b.time && a.hidden && !b.hidden));
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
 * A walk over the range described by a frontier, one commit at a time, newest first: `peek`
 * names the next commit without visiting it (so several walks can be interleaved in any order),
 * `next` visits it. Commits already marked as hidden or visited in this walk are not visited
 * twice. A commit is read once, when it is queued.
 */
export class CommitWalk {
  private readonly queue = new CommitQueue();
  /** oid -> hidden, for every commit queued in this walk. */
  private readonly state = new Map<Oid, boolean>();

  constructor(
    private readonly store: ObjectStore,
    frontier: readonly FrontierEntry[],
  ) {
    for (const entry of frontier) this.enqueue(entry.oid, entry.hidden);
  }

  private enqueue(oid: Oid, hidden: boolean): void {
    const known = this.state.get(oid);
    if (known === true || (known === false && !hidden)) return;
    this.state.set(oid, hidden);
    const commit = readCommit(this.store, oid);
    this.queue.push({ oid, hidden, time: commit.committer.timestamp, commit });
  }

  /** The next commit to visit, or undefined once the range is exhausted. */
  peek(): Oid | undefined {
    const { queue, state } = this;
    while (queue.size > 0 && !queue.allHidden) {
      const item = queue.top as Queued;
      const hidden = state.get(item.oid) === true;
      if (item.hidden === hidden && !hidden) return item.oid;
      queue.pop();
      // Superseded by a later "hidden" mark, or hidden: only the mark travels on.
      if (item.hidden === hidden) for (const parent of item.commit.parents) this.enqueue(parent, true);
    }
    return undefined;
  }

  /** Visits the next commit: its id and parsed commit; undefined once the range is exhausted. */
  next(): { oid: Oid; commit: Commit } | undefined {
    if (this.peek() === undefined) return undefined;
    const item = this.queue.pop() as Queued;
    for (const parent of item.commit.parents) this.enqueue(parent, false);
    return { oid: item.oid, commit: item.commit };
  }

  /**
   * Forgets the commits visited so far (what `walkCommits` remembers within one call), so a long
   * walk holds no more than its queue: a commit reached again by another path after this is
   * visited again.
   */
  forgetVisited(): void {
    this.state.clear();
    for (const item of this.queue.items) if (!this.state.get(item.oid)) this.state.set(item.oid, item.hidden);
  }

  /** Where to resume: empty when the range is exhausted. */
  frontier(): FrontierEntry[] {
    return this.peek() === undefined ? [] : this.queue.entries();
  }
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
  const walk = new CommitWalk(store, frontier);
  let visited = 0;
  while (visited < limit) {
    const step = walk.next();
    if (!step) break;
    visit(step.oid, step.commit);
    visited++;
  }
  return { visited, frontier: walk.frontier() };
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

/**
 * Where a commit is stored, as the key of a walk in storage order (`ObjectStore.position`).
 * Unpacked commits come first: they are few, and each costs a file of its own anyway.
 */
export function storageKey(store: Pick<ObjectStore, 'position'>, oid: Oid): number {
  return store.position?.(oid) ?? -1;
}

/**
 * Several ranges walked together, each newest first as `walkCommits` walks it, visiting next
 * whichever range's next commit is stored first (`ObjectStore.position`). Reads then go front
 * to back through the packs whatever their layout: ranges interleaved in time (as `git gc` and
 * clones pack them) are read side by side, ranges stored one after the other are read one
 * after the other. A range's frontier is read when the range first comes up.
 */
export class StorageOrderWalk {
  private readonly pending = new Heap<PendingRange>(before);
  private readonly left: FrontierEntry[][];

  constructor(
    private readonly store: ObjectStore,
    frontiers: ReadonlyArray<readonly FrontierEntry[]>,
  ) {
    this.left = frontiers.map((frontier) => [...frontier]);
    for (const [range, frontier] of frontiers.entries()) {
      const first = frontier.find((entry) => !entry.hidden);
      // Every item has its walk field from the start: an item gaining it later changes its
      // shape, one more reason for V8 to drop the walk's optimized code.
      if (first) this.pending.push({ range, key: storageKey(store, first.oid), walk: undefined });
      else this.left[range] = [];
    }
  }

  /** Visits up to `limit` commits in all; returns how many it visited (fewer once every range is exhausted). */
  step(limit: number, visit: (range: number, oid: Oid, commit: Commit) => void): number {
    const { pending, left } = this;
    // What each walk remembers is bounded by a step, as in `walkCommits`.
    for (const { walk } of pending.items) walk?.forgetVisited();
    let visited = 0;
    let item = pending.pop();
    while (visited < limit && item) {
      item.walk ??= new CommitWalk(this.store, left[item.range] as FrontierEntry[]);
      const step = item.walk.next();
      if (step) {
        visit(item.range, step.oid, step.commit);
        visited++;
      }
      const next = item.walk.peek();
      if (next === undefined) left[item.range] = [];
      else item.key = storageKey(this.store, next);
      // A range still first goes on without a trip through the heap (ranges stored one after the other).
      const top = pending.top;
      if (next !== undefined && (!top || before(item, top))) continue;
      if (next !== undefined) pending.push(item);
      item = pending.pop();
    }
    if (item) pending.push(item);
    return visited;
  }

  /** Where each range resumes, in the order given; empty for those exhausted. */
  frontiers(): FrontierEntry[][] {
    const frontiers = [...this.left];
    for (const { range, walk } of this.pending.items) if (walk) frontiers[range] = walk.frontier();
    return frontiers;
  }
}

/** Storage order; on a tie, the range given first. */
const before = (a: PendingRange, b: PendingRange): boolean => a.key < b.key || (a.key === b.key && a.range < b.range);

interface PendingRange {
  range: number;
  /** The position of the range's next commit. */
  key: number;
  /** Opened when the range first comes up. */
  walk: CommitWalk | undefined;
}
