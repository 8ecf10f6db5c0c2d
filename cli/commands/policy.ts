import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { ACTIVE_POLICY, activateBundle, publishBundle, readActivePolicy } from '../../engine/ledger/policy-store.js';
import type { Command } from '../command.js';
import { openLedger } from './ledger-context.js';

const USAGE = [
  'usage: gatos policy publish <dir> [--json]',
  '       gatos policy activate <bundle-id> [--json]',
  '       gatos policy show [--json]',
  '',
  '  publish    commit a bundle directory (must hold policy.json) to refs/gatos/policies/<bundle-id>,',
  '             on top of the active bundle; the same content publishes once',
  '  activate   move refs/gatos/policies/active to the bundle, fast-forward only',
  '  show       print the active policy (none active = every append is allowed)',
  '',
  'policy.json: {"version":1,"default":"allow"|"deny","rules":[{"id","effect":"allow"|"deny",',
  '              "match":{"ns"?,"type"?,"actor"?,"caps"?},"unless"?:{...},"reason"?}]}',
  '             ns and type take * wildcards; actor is an actor id or @group; first matching rule wins.',
].join('\n');

export const policyCommand: Command = {
  name: 'policy',
  usage: USAGE,
  options: {},
  allowPositionals: true,
  async run(ctx) {
    const [sub, arg] = ctx.positionals;
    await blake3Ready();
    const { repo, ledger } = openLedger(ctx.repo);
    try {
      if (sub === 'publish' && arg) {
        const published = publishBundle(ledger.objects, ledger.refs, ledger.clock, arg);
        ctx.out.result(
          { bundle_id: published.bundleId, commit: published.commit, ref: published.ref, created: published.created },
          `${published.created ? 'published' : 'already published:'} bundle ${published.bundleId}\n  ${published.ref} -> ${published.commit}\nactivate with: gatos policy activate ${published.bundleId}`,
        );
        return 0;
      }
      if (sub === 'activate' && arg) {
        const { commit, previous } = activateBundle(ledger.objects, ledger.refs, arg);
        ctx.out.result({ ref: ACTIVE_POLICY, commit, previous }, `${ACTIVE_POLICY} -> ${commit}`);
        return 0;
      }
      if (sub === 'show') {
        const active = readActivePolicy(ledger.objects, ledger.refs);
        ctx.out.result(
          active ?? { commit: null, policy: null },
          active ? `${active.commit}\n${JSON.stringify(active.policy, null, 2)}` : 'no active policy: every append is allowed',
        );
        return 0;
      }
      throw new GatosError('usage', USAGE);
    } finally {
      repo.close();
    }
  },
};
