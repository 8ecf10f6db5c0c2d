/**
 * Consensus governance (SPEC §20): proposal -> approvals (N of a group) -> grant, with
 * revocation; every step is a commit (decision 0005 for layouts and ids).
 *
 *   refs/gatos/proposals/<p>                  proposal (governance/proposal.json + trailers)
 *   refs/gatos/approvals/<p>/<signer-hex>     one approval per signer, Ed25519-signed
 *   refs/gatos/grants/<p>                     grant, once the quorum holds and before expiry
 *   refs/gatos/audit/proofs/governance/<p>    Proof-of-Consensus envelope (JCS)
 *   refs/gatos/revocations/<grant-hex>        revocation; a revoked grant is not usable
 *
 * `<p>` is the proposal id's hex. Ids are `blake3:<hex>` content ids of the JCS envelope
 * without the id itself and without signatures.
 */
import { contentIdOfJson } from '../codec/blake3.js';
import { canonicalize, parseJson } from '../codec/canonical-json.js';
import { GatosError } from '../errors.js';
import { actorPath } from '../git/gatos-refs.js';
import { findTreeEntry, readCommit, serializeCommit, serializeTree } from '../git/object-codec.js';
import type { ObjectStore, Oid } from '../git/ports.js';
import { parseTrailers, type Trailer, trailerValue, withTrailers } from '../git/trailers.js';
import { type Clock, rfc3339 } from './clock.js';
import type { Ledger } from './context.js';
import { loadPrivateKey, publicKeyId, signBytes, verifyBytes } from './keys.js';
import { readActivePolicy } from './policy-store.js';
import { assertGroup, keysOf, membersOf, readTrust, type TrustGraph } from './trust.js';

/** Governance runs on the same context as the rest of the ledger. */
export type Governance = Ledger;

export interface Proposal {
  action: string;
  target: string;
  required_quorum: string;
  policy_rule: string;
  created_by: string;
  created_at: string;
  expire_at: string;
}

export interface Quorum {
  need: number;
  group: string;
}

export type ProposalState = 'proposal' | 'partial' | 'granted' | 'expired' | 'revoked';

const NAME_RE = /^[a-z0-9_.-]+$/;
const ID_RE = /^(?:blake3:)?([0-9a-f]{64})$/;

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_argument', message, data);
}

/** Accepts `blake3:<hex>` or bare hex; returns the hex. */
export function idHex(id: string, what: string): string {
  const match = ID_RE.exec(id);
  if (!match) throw invalid(`${what} must be blake3:<64 hex> (or the bare hex), got ${JSON.stringify(id)}`);
  return match[1] as string;
}

/** `N-of-M@group` (M must be the group's size) or `N-of-@group`. */
export function parseQuorum(expression: string, trust: TrustGraph): Quorum {
  const match = /^(\d+)-of-(?:(\d+))?@([A-Za-z0-9._-]+)$/.exec(expression);
  if (!match) throw invalid(`quorum must look like 2-of-3@leads or 2-of-@leads, got ${JSON.stringify(expression)}`);
  const need = Number(match[1]);
  const group = assertGroup(`@${match[3]}`);
  const members = trust.groups[group];
  if (!members) throw new GatosError('unknown_group', `group ${group} is not defined in the trust graph`, { group });
  if (match[2] !== undefined && Number(match[2]) !== members.length) {
    throw invalid(`quorum ${expression} names ${match[2]} members but ${group} has ${members.length}`);
  }
  if (need < 1 || need > members.length) throw invalid(`quorum ${expression} needs ${need} of ${members.length} members`);
  return { need, group };
}

/** ISO 8601 durations of days/hours/minutes/seconds (`PT72H`, `P1D`) or plain seconds. */
export function parseTtl(ttl: string): number {
  if (/^\d+$/.test(ttl)) return Number(ttl) * 1000;
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(ttl);
  if (!match || ttl === 'P' || ttl.endsWith('T'))
    throw invalid(`ttl must be seconds or an ISO 8601 duration like PT72H, got ${JSON.stringify(ttl)}`);
  const [d, h, m, s] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number];
  return (((d * 24 + h) * 60 + m) * 60 + s) * 1000;
}

function who(actor: string, clock: Clock) {
  const [kind, name] = actor.split(':') as [string, string];
  return { name: actor, email: `${name}@${kind}.gatos.invalid`, timestamp: Math.floor(clock() / 1000), timezone: '+0000' };
}

/** Commits `file` (JCS) under `governance/` with trailers; returns the commit id. */
function commitDocument(
  gov: Governance,
  actor: string,
  file: string,
  document: unknown,
  subject: string,
  trailers: Trailer[],
  parents: Oid[] = [],
): Oid {
  const blob = gov.objects.write('blob', Buffer.from(`${canonicalize(document)}\n`));
  const sub = gov.objects.write('tree', serializeTree([{ mode: '100644', name: file, oid: blob }]));
  const tree = gov.objects.write('tree', serializeTree([{ mode: '40000', name: 'governance', oid: sub }]));
  const signature = who(actor, gov.clock);
  return gov.objects.write(
    'commit',
    serializeCommit({ tree, parents, author: signature, committer: signature, message: withTrailers(subject, trailers) }),
  );
}

function readDocument<T>(objects: ObjectStore, commit: Oid, file: string): T {
  const sub = findTreeEntry(objects.read(readCommit(objects, commit).tree).body, 'governance');
  const blob = sub && findTreeEntry(objects.read(sub.oid).body, file);
  if (!blob) throw new GatosError('corrupt_object', `${commit} has no governance/${file}`, { commit });
  return parseJson(Buffer.from(objects.read(blob.oid).body).toString('utf8')) as T;
}

function trailersOf(objects: ObjectStore, commit: Oid): Trailer[] {
  return parseTrailers(readCommit(objects, commit).message);
}

/** The actor's private key, checked against the trust graph. */
function signerKey(gov: Governance, trust: TrustGraph, actor: string) {
  actorPath(actor);
  if (keysOf(trust, actor).length === 0) throw new GatosError('unknown_actor', `actor ${actor} has no key in the trust graph`, { actor });
  const key = loadPrivateKey(gov.keyDir, actor);
  if (!keysOf(trust, actor).includes(publicKeyId(key)))
    throw new GatosError('key_not_trusted', `the local key of ${actor} is not in the trust graph`, { actor });
  return key;
}

/**
 * Opens a proposal. The active policy's `governance.<action>` entry, when present, sets the
 * quorum and ttl; a `quorum` given here must then agree with it.
 */
export function propose(
  gov: Governance,
  request: { action: string; target: string; quorum?: string; ttl?: string; expireAt?: string; policyRule?: string; actor: string },
): { proposalId: string; commit: Oid; created: boolean } {
  const { graph } = readTrust(gov.objects, gov.refs);
  if (!NAME_RE.test(request.action)) throw invalid('action must match [a-z0-9_.-]+');
  const governed = readActivePolicy(gov.objects, gov.refs)?.policy.governance?.[request.action];
  if (governed && request.quorum !== undefined && request.quorum !== governed.quorum) {
    throw invalid(`the active policy requires quorum ${governed.quorum} for ${request.action}, not ${request.quorum}`);
  }
  const quorum = governed?.quorum ?? request.quorum;
  if (quorum === undefined) throw invalid(`no quorum given and the active policy has no governance.${request.action} entry`);
  const ttl = request.ttl ?? governed?.ttl;
  const input = { ...request, quorum, ...(ttl === undefined ? {} : { ttl }) };
  const policyRule = input.policyRule ?? `governance.${input.action}`;
  if (!NAME_RE.test(policyRule)) throw invalid('policy rule must match [a-z0-9_.-]+');
  if (!/^[a-z][a-z0-9+.-]*:\S+$/.test(input.target))
    throw invalid(`target must be a URI (e.g. gatos://assets/x), got ${JSON.stringify(input.target)}`);
  parseQuorum(input.quorum, graph);
  const now = gov.clock();
  const expireAt = input.expireAt ?? rfc3339(now + parseTtl(input.ttl ?? 'PT72H'));
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(expireAt) || Number.isNaN(Date.parse(expireAt)))
    throw invalid(`expire-at must be YYYY-MM-DDTHH:MM:SSZ, got ${JSON.stringify(expireAt)}`);
  const key = signerKey(gov, graph, input.actor);
  const proposal: Proposal = {
    action: input.action,
    target: input.target,
    required_quorum: input.quorum,
    policy_rule: policyRule,
    created_by: input.actor,
    created_at: rfc3339(now),
    expire_at: expireAt,
  };
  const proposalId = contentIdOfJson(proposal);
  const ref = `refs/gatos/proposals/${idHex(proposalId, 'proposal id')}`;
  const existing = gov.refs.resolve(ref);
  if (existing) return { proposalId, commit: existing, created: false };
  const sig = Buffer.from(signBytes(key, Buffer.from(proposalId))).toString('hex');
  const commit = commitDocument(
    gov,
    input.actor,
    'proposal.json',
    { ...proposal, proposal_id: proposalId },
    `governance: propose ${input.action} on ${input.target}`,
    [
      { key: 'Action', value: proposal.action },
      { key: 'Target', value: proposal.target },
      { key: 'Proposal-Id', value: proposalId },
      { key: 'Required-Quorum', value: proposal.required_quorum },
      { key: 'Expire-At', value: proposal.expire_at },
      { key: 'Policy-Rule', value: proposal.policy_rule },
      { key: 'Created-By', value: proposal.created_by },
      { key: 'Sig', value: `ed25519:${sig}` },
    ],
  );
  gov.refs.transaction().create(ref, commit).commit();
  return { proposalId, commit, created: true };
}

export function readProposal(
  gov: Governance,
  proposalId: string,
): { proposal: Proposal & { proposal_id: string }; commit: Oid; hex: string } {
  const hex = idHex(proposalId, 'proposal id');
  const commit = gov.refs.resolve(`refs/gatos/proposals/${hex}`);
  if (!commit) throw new GatosError('proposal_not_found', `no proposal blake3:${hex}`, { proposal_id: `blake3:${hex}` });
  return { proposal: readDocument(gov.objects, commit, 'proposal.json'), commit, hex };
}

const expired = (proposal: Proposal, clock: Clock): boolean => clock() >= Date.parse(proposal.expire_at);

export function approve(gov: Governance, proposalId: string, actor: string): { approvalId: string; commit: Oid; created: boolean } {
  const { proposal, hex } = readProposal(gov, proposalId);
  if (expired(proposal, gov.clock))
    throw new GatosError('proposal_expired', `proposal blake3:${hex} expired at ${proposal.expire_at}`, { proposal_id: `blake3:${hex}` });
  const { graph } = readTrust(gov.objects, gov.refs);
  const key = signerKey(gov, graph, actor);
  const signer = publicKeyId(key);
  const ref = `refs/gatos/approvals/${hex}/${signer.slice('ed25519:'.length)}`;
  const existing = gov.refs.resolve(ref);
  if (existing)
    return { approvalId: trailerValue(trailersOf(gov.objects, existing), 'Approval-Id') ?? '', commit: existing, created: false };
  const approval = { proposal_id: `blake3:${hex}`, signer, approver: actor, approved_at: rfc3339(gov.clock()) };
  const approvalId = contentIdOfJson(approval);
  const sig = Buffer.from(signBytes(key, Buffer.from(approvalId))).toString('hex');
  const commit = commitDocument(
    gov,
    actor,
    'approval.json',
    { ...approval, approval_id: approvalId },
    `governance: approve blake3:${hex.slice(0, 16)}`,
    [
      { key: 'Proposal-Id', value: `blake3:${hex}` },
      { key: 'Approval-Id', value: approvalId },
      { key: 'Signer', value: signer },
      { key: 'Sig', value: `ed25519:${sig}` },
    ],
  );
  gov.refs.transaction().create(ref, commit).commit();
  return { approvalId, commit, created: true };
}

interface CountedApproval {
  approval_id: string;
  signer: string;
  actor: string;
}

/** Approvals that count: signature valid, signer's key belongs to a group member, one per actor. */
function countedApprovals(gov: Governance, hex: string, quorum: Quorum, trust: TrustGraph): CountedApproval[] {
  const members = new Set(membersOf(trust, quorum.group));
  const byActor = new Map<string, CountedApproval>();
  for (const { oid } of gov.refs.list(`refs/gatos/approvals/${hex}/`)) {
    const doc = readDocument<{ approval_id: string; signer: string; approver: string; proposal_id: string }>(
      gov.objects,
      oid,
      'approval.json',
    );
    const sig = trailerValue(trailersOf(gov.objects, oid), 'Sig') ?? '';
    const { approval_id: approvalId, ...core } = doc;
    if (core.proposal_id !== `blake3:${hex}` || contentIdOfJson(core) !== approvalId) continue;
    if (!/^ed25519:[0-9a-f]{128}$/.test(sig) || !verifyBytes(doc.signer, Buffer.from(approvalId), Buffer.from(sig.slice(8), 'hex')))
      continue;
    if (!members.has(doc.approver) || !keysOf(trust, doc.approver).includes(doc.signer)) continue;
    if (!byActor.has(doc.approver)) byActor.set(doc.approver, { approval_id: approvalId, signer: doc.signer, actor: doc.approver });
  }
  return [...byActor.values()].sort((a, b) => (a.signer < b.signer ? -1 : a.signer > b.signer ? 1 : 0));
}

export function grant(
  gov: Governance,
  proposalId: string,
  actor: string,
): { grantId: string; commit: Oid; proofOfConsensus: string; created: boolean } {
  const { proposal, hex } = readProposal(gov, proposalId);
  const ref = `refs/gatos/grants/${hex}`;
  const existing = gov.refs.resolve(ref);
  if (existing) {
    const trailers = trailersOf(gov.objects, existing);
    return {
      grantId: trailerValue(trailers, 'Grant-Id') ?? '',
      commit: existing,
      proofOfConsensus: trailerValue(trailers, 'Proof-Of-Consensus') ?? '',
      created: false,
    };
  }
  if (expired(proposal, gov.clock))
    throw new GatosError('proposal_expired', `proposal blake3:${hex} expired at ${proposal.expire_at}; it cannot be granted`, {
      proposal_id: `blake3:${hex}`,
    });
  const { graph } = readTrust(gov.objects, gov.refs);
  const quorum = parseQuorum(proposal.required_quorum, graph);
  const approvals = countedApprovals(gov, hex, quorum, graph);
  if (approvals.length < quorum.need) {
    throw new GatosError(
      'quorum_not_met',
      `proposal blake3:${hex} has ${approvals.length} of the ${quorum.need} approvals ${proposal.required_quorum} needs`,
      { have: approvals.length, need: quorum.need },
    );
  }
  const poc = {
    proposal_id: `blake3:${hex}`,
    approvals: approvals.map(({ approval_id, signer }) => ({ approval_id, signer })),
    policy_rule: proposal.policy_rule,
    quorum: proposal.required_quorum,
  };
  const proofOfConsensus = contentIdOfJson(poc);
  const grantDoc = { proposal_id: `blake3:${hex}`, proof_of_consensus: proofOfConsensus };
  const grantId = contentIdOfJson(grantDoc);
  const proofCommit = commitDocument(
    gov,
    actor,
    'proof-of-consensus.json',
    poc,
    `governance: proof of consensus for blake3:${hex.slice(0, 16)}`,
    [
      { key: 'Proposal-Id', value: `blake3:${hex}` },
      { key: 'Proof-Of-Consensus', value: proofOfConsensus },
    ],
  );
  const commit = commitDocument(
    gov,
    actor,
    'grant.json',
    { ...grantDoc, grant_id: grantId },
    `governance: grant ${proposal.action} on ${proposal.target}`,
    [
      { key: 'Proposal-Id', value: `blake3:${hex}` },
      { key: 'Grant-Id', value: grantId },
      { key: 'Proof-Of-Consensus', value: proofOfConsensus },
    ],
  );
  gov.refs.transaction().create(ref, commit).create(`refs/gatos/audit/proofs/governance/${hex}`, proofCommit).commit();
  return { grantId, commit, proofOfConsensus, created: true };
}

function findGrant(gov: Governance, grantId: string): { commit: Oid; proposalHex: string } {
  const wanted = `blake3:${idHex(grantId, 'grant id')}`;
  for (const { name, oid } of gov.refs.list('refs/gatos/grants/')) {
    if (trailerValue(trailersOf(gov.objects, oid), 'Grant-Id') === wanted)
      return { commit: oid, proposalHex: name.slice('refs/gatos/grants/'.length) };
  }
  throw new GatosError('grant_not_found', `no grant ${wanted}`, { grant_id: wanted });
}

export function revoke(
  gov: Governance,
  grantId: string,
  reason: string,
  actor: string,
): { revocationId: string; commit: Oid; created: boolean } {
  const hex = idHex(grantId, 'grant id');
  findGrant(gov, grantId);
  if (reason.length < 1 || reason.length > 256) throw invalid('--reason must be 1 to 256 characters');
  const { graph } = readTrust(gov.objects, gov.refs);
  signerKey(gov, graph, actor);
  const ref = `refs/gatos/revocations/${hex}`;
  const existing = gov.refs.resolve(ref);
  if (existing)
    return { revocationId: trailerValue(trailersOf(gov.objects, existing), 'Revocation-Id') ?? '', commit: existing, created: false };
  const revocation = { grant_id: `blake3:${hex}`, reason, revoked_by: actor };
  const revocationId = contentIdOfJson(revocation);
  const commit = commitDocument(
    gov,
    actor,
    'revocation.json',
    { ...revocation, revocation_id: revocationId },
    `governance: revoke blake3:${hex.slice(0, 16)}`,
    [
      { key: 'Grant-Id', value: `blake3:${hex}` },
      { key: 'Revocation-Id', value: revocationId },
      { key: 'Reason', value: reason.replace(/\s+/g, ' ') },
      { key: 'Revoked-By', value: actor },
    ],
  );
  gov.refs.transaction().create(ref, commit).commit();
  return { revocationId, commit, created: true };
}

export interface ProposalStatus {
  proposal_id: string;
  state: ProposalState;
  action: string;
  target: string;
  required_quorum: string;
  expire_at: string;
  approvals: Array<{ approval_id: string; signer: string; actor: string }>;
  grant_id?: string;
  proof_of_consensus?: string;
  revocation_id?: string;
}

export function status(gov: Governance, proposalId: string): ProposalStatus {
  const { proposal, hex } = readProposal(gov, proposalId);
  const { graph } = readTrust(gov.objects, gov.refs);
  const approvals = countedApprovals(gov, hex, parseQuorum(proposal.required_quorum, graph), graph);
  const result: ProposalStatus = {
    proposal_id: `blake3:${hex}`,
    state: 'proposal',
    action: proposal.action,
    target: proposal.target,
    required_quorum: proposal.required_quorum,
    expire_at: proposal.expire_at,
    approvals,
  };
  const grantCommit = gov.refs.resolve(`refs/gatos/grants/${hex}`);
  if (grantCommit) {
    const trailers = trailersOf(gov.objects, grantCommit);
    result.grant_id = trailerValue(trailers, 'Grant-Id') ?? '';
    result.proof_of_consensus = trailerValue(trailers, 'Proof-Of-Consensus') ?? '';
    const revocation = gov.refs.resolve(`refs/gatos/revocations/${idHex(result.grant_id, 'grant id')}`);
    if (revocation) {
      result.revocation_id = trailerValue(trailersOf(gov.objects, revocation), 'Revocation-Id') ?? '';
      result.state = 'revoked';
    } else {
      result.state = 'granted';
    }
  } else if (expired(proposal, gov.clock)) {
    result.state = 'expired';
  } else if (approvals.length > 0) {
    result.state = 'partial';
  }
  return result;
}

/** True only for a grant that exists and has not been revoked. */
export function isGrantUsable(gov: Governance, grantId: string): boolean {
  try {
    findGrant(gov, grantId);
  } catch {
    return false;
  }
  return gov.refs.resolve(`refs/gatos/revocations/${idHex(grantId, 'grant id')}`) === undefined;
}
