import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { approve, grant, idHex, propose, revoke, status } from '../../engine/ledger/governance.js';
import { announce } from '../../engine/ledger/governance-announce.js';
import { type Command, type CommandContext, requiredFlag, stringFlag } from '../command.js';
import { openLedger } from './ledger-context.js';

const USAGE = [
  'usage: gatos gov propose --action A --target URI [--quorum 2-of-@leads] [--ttl PT72H | --expire-at T] [--policy-rule R] [--actor A]',
  '       gatos gov approve <proposal-id> [--actor A]',
  '       gatos gov grant <proposal-id> [--actor A]',
  '       gatos gov revoke <grant-id> --reason TEXT [--actor A]',
  '       gatos gov status <proposal-id> [--json]',
  '',
  '  quorum     N-of-M@group (M = the group size) or N-of-@group, groups from the trust graph;',
  "             the active policy's governance.<action> entry sets it (and the ttl) when present",
  "  --actor    defaults to $GATOS_ACTOR; approvals are signed with the actor's key",
  '  grant      refused until enough distinct group members approved (quorum_not_met), or after expiry',
  '  status     proposal | partial | granted | expired | revoked, with the counted approvals',
  '  Each transition is also published on gatos.governance.{proposal.created,approval.created,',
  '  grant.created,grant.revoked} (gatos messages read --topic ...).',
].join('\n');

const flag = stringFlag;
const need = (ctx: CommandContext, name: string, fallback?: string): string => requiredFlag(ctx, name, USAGE, fallback);

export const govCommand: Command = {
  name: 'gov',
  usage: USAGE,
  options: {
    action: { type: 'string' },
    target: { type: 'string' },
    quorum: { type: 'string' },
    ttl: { type: 'string' },
    'expire-at': { type: 'string' },
    'policy-rule': { type: 'string' },
    actor: { type: 'string' },
    reason: { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    await blake3Ready();
    const [sub, id] = ctx.positionals;
    const { repo, ledger } = openLedger(ctx.repo);
    const gov = ledger;
    const actor = () => need(ctx, 'actor', process.env.GATOS_ACTOR);
    const target = () => {
      if (!id) throw new GatosError('usage', `an id is required\n\n${USAGE}`);
      return id;
    };
    try {
      switch (sub) {
        case 'propose': {
          const input: Parameters<typeof propose>[1] = {
            action: need(ctx, 'action'),
            target: need(ctx, 'target'),
            actor: actor(),
          };
          const quorum = flag(ctx, 'quorum');
          if (quorum) input.quorum = quorum;
          const ttl = flag(ctx, 'ttl');
          const expireAt = flag(ctx, 'expire-at');
          const rule = flag(ctx, 'policy-rule');
          if (ttl) input.ttl = ttl;
          if (expireAt) input.expireAt = expireAt;
          if (rule) input.policyRule = rule;
          const result = propose(gov, input);
          if (result.created)
            await announce(gov, 'proposal.created', { proposal_id: result.proposalId, action: input.action, target: input.target });
          ctx.out.result(
            { proposal_id: result.proposalId, commit: result.commit, created: result.created },
            `proposal ${result.proposalId}${result.created ? '' : ' (already proposed)'}`,
          );
          return 0;
        }
        case 'approve': {
          const result = approve(gov, target(), actor());
          if (result.created)
            await announce(gov, 'approval.created', {
              proposal_id: `blake3:${idHex(target(), 'proposal id')}`,
              approval_id: result.approvalId,
            });
          ctx.out.result(
            { approval_id: result.approvalId, commit: result.commit, created: result.created },
            `approval ${result.approvalId}${result.created ? '' : ' (already approved by this signer)'}`,
          );
          return 0;
        }
        case 'grant': {
          const result = grant(gov, target(), actor());
          if (result.created) {
            await announce(gov, 'grant.created', {
              proposal_id: `blake3:${idHex(target(), 'proposal id')}`,
              grant_id: result.grantId,
              proof_of_consensus: result.proofOfConsensus,
            });
          }
          ctx.out.result(
            { grant_id: result.grantId, proof_of_consensus: result.proofOfConsensus, commit: result.commit, created: result.created },
            `grant ${result.grantId}\nProof-Of-Consensus: ${result.proofOfConsensus}`,
          );
          return 0;
        }
        case 'revoke': {
          const result = revoke(gov, target(), need(ctx, 'reason'), actor());
          if (result.created)
            await announce(gov, 'grant.revoked', { grant_id: `blake3:${idHex(target(), 'grant id')}`, revocation_id: result.revocationId });
          ctx.out.result(
            { revocation_id: result.revocationId, commit: result.commit, created: result.created },
            `revocation ${result.revocationId}`,
          );
          return 0;
        }
        case 'status': {
          const result = status(gov, target());
          const approvals = result.approvals.map((a) => `  ${a.actor} (${a.signer.slice(0, 20)}...)`).join('\n');
          ctx.out.result(
            result,
            `${result.proposal_id}: ${result.state}\n${result.action} on ${result.target}, quorum ${result.required_quorum}, expires ${result.expire_at}\napprovals:\n${approvals || '  none'}`,
          );
          return 0;
        }
        default:
          throw new GatosError('usage', USAGE);
      }
    } finally {
      repo.close();
    }
  },
};
