/** A ledger context over a repository with keys for some actors published in its trust graph. */
import type { Repository } from '../../engine/git/repository.js';
import type { Ledger } from '../../engine/ledger/context.js';
import { createKey } from '../../engine/ledger/keys.js';
import { addActorKey, updateTrust } from '../../engine/ledger/trust.js';

export function trustedLedger(
  repo: Repository,
  keyDir: string,
  clock: () => number,
  actors: readonly string[] = ['user:alice', 'user:bob'],
): Ledger {
  const ctx: Ledger = { objects: repo.objects, refs: repo.refs, keyDir, clock };
  for (const actor of actors) {
    const { publicKey } = createKey(keyDir, actor);
    updateTrust(ctx.objects, ctx.refs, clock, `add ${actor}`, (graph) => addActorKey(graph, actor, publicKey));
  }
  return ctx;
}
