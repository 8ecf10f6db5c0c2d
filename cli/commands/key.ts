import { GatosError } from '../../engine/errors.js';
import { createKey, hasKey, removeKey } from '../../engine/ledger/keys.js';
import { addActorKey, readTrust, TRUST_REF, updateTrust } from '../../engine/ledger/trust.js';
import type { Command } from '../command.js';
import { openLedger } from './ledger-context.js';

const USAGE = [
  'usage: gatos key new --actor <kind:name> [--group @name ...] [--json]',
  '       gatos key ls [--json]',
  '',
  '  new   make an Ed25519 key pair: the private key goes to the key directory (GATOS_KEY_DIR,',
  '        default .git/gatos/keys, files 0600), the public key into the trust graph (refs/gatos/trust)',
  '  ls    list actors, their public keys, groups, and whether a private key is present here',
].join('\n');

export const keyCommand: Command = {
  name: 'key',
  usage: USAGE,
  options: { actor: { type: 'string' }, group: { type: 'string', multiple: true } },
  allowPositionals: true,
  run(ctx) {
    const [sub] = ctx.positionals;
    const { repo, ledger } = openLedger(ctx.repo);
    try {
      if (sub === 'new') {
        const actor = ctx.values.actor;
        if (typeof actor !== 'string') throw new GatosError('usage', `--actor is required\n\n${USAGE}`);
        const groups = (ctx.values.group as string[] | undefined) ?? [];
        const created = createKey(ledger.keyDir, actor);
        try {
          updateTrust(ledger.objects, ledger.refs, ledger.clock, `trust: add key for ${actor}`, (graph) =>
            addActorKey(graph, actor, created.publicKey, groups),
          );
        } catch (err) {
          removeKey(ledger.keyDir, actor); // nothing half-done: no key without its published half
          throw err;
        }
        ctx.out.result(
          { actor, public_key: created.publicKey, groups, ref: TRUST_REF },
          `created key for ${actor}: ${created.publicKey}\nprivate key: ${created.path}`,
        );
        return 0;
      }
      if (sub === 'ls') {
        const { graph } = readTrust(ledger.objects, ledger.refs);
        const actors = Object.entries(graph.actors).map(([actor, entry]) => ({
          actor,
          keys: entry.keys,
          local: hasKey(ledger.keyDir, actor),
        }));
        const lines = actors.map((a) => `${a.actor}${a.local ? ' (private key here)' : ''}\n${a.keys.map((k) => `  ${k}`).join('\n')}`);
        const groups = Object.entries(graph.groups).map(([group, members]) => `${group}: ${members.join(', ')}`);
        ctx.out.result(
          { actors, groups: graph.groups },
          [...lines, ...groups].join('\n') || 'no keys yet (gatos key new --actor user:<name>)',
        );
        return 0;
      }
      throw new GatosError('usage', `unknown subcommand ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
    } finally {
      repo.close();
    }
  },
};
