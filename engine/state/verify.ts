/**
 * `gatos fold verify`: checks a checkpoint against its Proof-of-Fold and by replaying the fold.
 * Every check is reported; any failure makes the verification fail, naming what failed.
 */
import { createHash } from 'node:crypto';
import { blake3Bytes, contentId } from '../codec/blake3.js';
import { parseJson } from '../codec/canonical-json.js';
import { findTreeEntry, readCommit } from '../git/object-codec.js';
import type { Oid } from '../git/ports.js';
import { trailerValue } from '../git/trailers.js';
import type { Ledger } from '../ledger/context.js';
import { verifyBytes } from '../ledger/keys.js';
import { keysOf, readTrust } from '../ledger/trust.js';
import { readCheckpoint } from './checkpoint.js';
import { collectEvents } from './events.js';
import { ENGINE_ACTOR, foldState } from './fold.js';
import { eventKey } from './fold-engine.js';
import { readStateTree, rootOfState, stateRootOf } from './state-tree.js';

export interface FoldCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface FoldVerification {
  commit: Oid;
  ok: boolean;
  checks: FoldCheck[];
}

const REQUIRED = ['State-Root', 'Ledger-Head', 'Policy-Root', 'Fold-Root', 'Fold-Engine', 'Proof-Of-Fold', 'Fold-Sig'];

export async function verifyCheckpoint(ctx: Ledger, commit: Oid, gitDir: string): Promise<FoldVerification> {
  const checks: FoldCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push(ok ? { name, ok } : { name, ok, detail });
    return ok;
  };
  const checkpoint = readCheckpoint(ctx.objects, commit);
  const missing = REQUIRED.filter((key) => trailerValue(checkpoint.trailers, key) === undefined);
  const hasHeads = checkpoint.heads.size > 0 || !checkpoint.trailers.some((t) => t.key === 'Fold-Last');
  check(
    'trailers',
    missing.length === 0 || (missing.length === 1 && missing[0] === 'Ledger-Head' && hasHeads),
    `missing ${missing.join(', ')}`,
  );
  const specDigest = `sha256:${createHash('sha256').update(checkpoint.specBytes).digest('hex')}`;
  check('fold_root', specDigest === checkpoint.foldRoot, `fold/spec.json hashes to ${specDigest}, Fold-Root says ${checkpoint.foldRoot}`);
  const nodes = checkpoint.stateTree ? readStateTree(ctx.objects, checkpoint.stateTree, checkpoint.spec) : [];
  const treeRoot = stateRootOf(nodes);
  check('state_tree', treeRoot === checkpoint.stateRoot, `the state/ tree hashes to ${treeRoot}, State-Root says ${checkpoint.stateRoot}`);

  const proofCommit = trailerValue(checkpoint.trailers, 'Proof-Commit');
  const proofEntry = proofCommit
    ? findTreeEntry(ctx.objects.read(readCommit(ctx.objects, proofCommit).tree).body, 'proof.json')
    : undefined;
  if (check('proof_present', proofEntry !== undefined, 'no proof.json at Proof-Commit')) {
    const bytes = ctx.objects.read((proofEntry as { oid: Oid }).oid).body;
    const id = contentId(bytes);
    check('proof_digest', id === trailerValue(checkpoint.trailers, 'Proof-Of-Fold'), `proof.json hashes to ${id}, Proof-Of-Fold differs`);
    const proof = parseJson(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    const fieldsOk = ['fold_id', 'engine', 'policy_root', 'inputs', 'output_shape_root', 'metrics', 'ts'].every(
      (k) => proof[k] !== undefined,
    );
    check('proof_schema', fieldsOk, 'proof.json lacks required fields');
    check(
      'proof_binds_state',
      proof.output_shape_root === checkpoint.stateRoot &&
        proof.fold_root === checkpoint.foldRoot &&
        proof.policy_root === checkpoint.policyRoot,
      'proof.json names another state root, fold root or policy root',
    );
    const sig = /^ed25519:([0-9a-f]{128})#engine:(.+)$/.exec(trailerValue(checkpoint.trailers, 'Fold-Sig') ?? '');
    const key = String(proof.engine_key ?? '');
    check(
      'signature',
      sig !== null && verifyBytes(key, blake3Bytes(bytes), Buffer.from(sig[1] as string, 'hex')),
      'Fold-Sig does not verify with the engine key over the proof',
    );
    const actor = sig?.[2] ?? ENGINE_ACTOR;
    check('trusted_engine', keysOf(readTrust(ctx.objects, ctx.refs).graph, actor).includes(key), `${key} is not a trusted key of ${actor}`);
  }

  const heads = [...checkpoint.heads].map(([name, oid]) => ({ name, oid }));
  const ns = /^refs\/gatos\/journal\/(.+)\/[^/]+\/[^/]+$/.exec(heads[0]?.name ?? '')?.[1] ?? '';
  const events = await collectEvents({ objects: ctx.objects, gitDir }, ns, heads);
  const { state } = foldState(new Map(), events, checkpoint.spec);
  const replayed = rootOfState(state);
  check(
    'replay',
    replayed === checkpoint.stateRoot,
    `replaying ${events.length} events gives ${replayed}, State-Root says ${checkpoint.stateRoot}`,
  );
  const last = events.length > 0 ? eventKey(events[events.length - 1] as (typeof events)[number]) : undefined;
  check(
    'ledger_window',
    events.length === checkpoint.events && last === checkpoint.last,
    'Fold-Events or Fold-Last disagree with the ledger',
  );
  return { commit, ok: checks.every((c) => c.ok), checks };
}
