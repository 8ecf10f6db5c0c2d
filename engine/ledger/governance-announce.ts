/**
 * Governance transitions announced on the message plane (SPEC §20.6 topic names):
 * `gatos.governance.proposal.created`, `.approval.created`, `.grant.created`, `.grant.revoked`.
 * Announcing is best effort after the governance commit itself, which is the record.
 */
import { type Bus, publish, type Receipt } from '../messages/publish.js';

export type Transition = 'proposal.created' | 'approval.created' | 'grant.created' | 'grant.revoked';

export function governanceTopic(transition: Transition): string {
  return `gatos.governance.${transition}`;
}

export async function announce(bus: Bus, transition: Transition, payload: Record<string, unknown>): Promise<Receipt> {
  const refs = typeof payload.proposal_id === 'string' ? { proposal_id: payload.proposal_id } : undefined;
  const [receipt] = await publish(bus, governanceTopic(transition), [
    { ns: 'governance', type: `governance.${transition}`, payload, ...(refs ? { refs } : {}) },
  ]);
  return receipt as Receipt;
}
