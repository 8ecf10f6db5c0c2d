/**
 * `gatos state bisect`: finds the first ledger event after which a predicate on the state fails,
 * like `git bisect run`. The events between the good and the bad checkpoint are put in fold
 * order; states in between are folded on demand (no checkpoint needs to exist for them).
 */
import { GatosError } from '../errors.js';
import type { Oid } from '../git/ports.js';
import type { Ledger } from '../ledger/context.js';
import { readCheckpoint } from './checkpoint.js';
import { collectEvents } from './events.js';
import { foldState } from './fold.js';
import type { FoldEvent, StateMap } from './fold-engine.js';

export interface BisectResult {
  first_bad: { commit: Oid; ulid: string; type: string; actor: string; ref: string };
  /** Events after the good checkpoint that were candidates. */
  candidates: number;
  steps: number;
}

/** The state as one JSON object, paths in byte order (what the predicate reads on stdin). */
export function stateJson(state: StateMap): string {
  const paths = [...state.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return JSON.stringify(Object.fromEntries(paths.map((p) => [p, state.get(p)])));
}

export async function bisectState(
  ctx: Ledger,
  gitDir: string,
  ns: string,
  good: Oid,
  bad: Oid,
  isGood: (stateJson: string) => Promise<boolean>,
): Promise<BisectResult> {
  const goodPoint = readCheckpoint(ctx.objects, good);
  const badPoint = readCheckpoint(ctx.objects, bad);
  const source = { objects: ctx.objects, gitDir };
  const heads = (point: typeof goodPoint) => [...point.heads].map(([name, oid]) => ({ name, oid }));
  const events = await collectEvents(source, ns, heads(badPoint));
  const goodEvents = await collectEvents(source, ns, heads(goodPoint));
  if (goodEvents.some((event, i) => events[i]?.commit !== event.commit))
    throw new GatosError('bisect_not_prefix', 'the good checkpoint is not an earlier point of the bad one in fold order', { good, bad });
  const at = (count: number) => stateJson(foldState(new Map(), events.slice(0, count), badPoint.spec).state);
  let steps = 0;
  const test = async (count: number) => {
    steps++;
    return isGood(at(count));
  };
  let lo = goodEvents.length;
  let hi = events.length;
  if (!(await test(lo))) throw new GatosError('bisect_inconsistent', `the predicate fails on the good checkpoint ${good}`, { good });
  if (hi === lo || (await test(hi)))
    throw new GatosError('bisect_inconsistent', `the predicate holds on the bad checkpoint ${bad}`, { bad });
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await test(mid)) lo = mid;
    else hi = mid;
  }
  const culprit = events[hi - 1] as FoldEvent;
  return {
    first_bad: { commit: culprit.commit, ulid: culprit.ulid, type: culprit.type, actor: culprit.actor, ref: culprit.ref },
    candidates: events.length - goodEvents.length,
    steps,
  };
}
