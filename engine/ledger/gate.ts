/**
 * The policy gate on appends: every event of a batch is evaluated against the active policy
 * before anything is written; each denial is audited, and any denial stops the batch with
 * `POLICY_DENY` (decision 0004). Returns the policy root the appended envelopes record.
 */
import { GatosError } from '../errors.js';
import { ZERO_OID } from '../git/oid.js';
import type { Oid } from '../git/ports.js';
import type { Ledger } from './context.js';
import { evaluate, type Intent } from './policy.js';
import { auditDeny, readActivePolicy } from './policy-store.js';
import type { TrustGraph } from './trust.js';

export interface GatedEvent extends Intent {
  ulid: string;
  /** The journal ref the event would be appended to. */
  ref: string;
}

export function gate(ledger: Ledger, events: readonly GatedEvent[], graph: TrustGraph): Oid {
  const active = readActivePolicy(ledger.objects, ledger.refs);
  if (!active) return ZERO_OID;
  const denied = [];
  for (const input of events) {
    const intent: Intent = { ns: input.ns, type: input.type, actor: input.actor };
    if (input.caps) intent.caps = input.caps;
    const ref = input.ref;
    const decision = evaluate(active.policy, graph, intent);
    if (decision.allow) continue;
    auditDeny(ledger.objects, ledger.refs, ledger.clock, {
      ulid: input.ulid,
      actor: input.actor,
      ns: input.ns,
      type: input.type,
      target: ref,
      policyRoot: active.commit,
      decision,
    });
    denied.push({ ulid: input.ulid, actor: input.actor, type: input.type, rule: decision.rule, reason: decision.reason });
  }
  const first = denied[0];
  if (first) {
    throw new GatosError(
      'POLICY_DENY',
      `policy denies ${first.type} by ${first.actor}: ${first.reason} (rule ${first.rule})${denied.length > 1 ? `, and ${denied.length - 1} more` : ''}`,
      {
        denied,
        policy_root: active.commit,
      },
    );
  }
  return active.commit;
}
