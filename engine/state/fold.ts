/**
 * `gatos fold`: folds a namespace's journals into a checkpoint on `refs/gatos/state/<ns>` with
 * its Proof-of-Fold on `refs/gatos/audit/proofs/folds/<ns>` (decision 0008). Incremental when it
 * can be exact: same spec and policy as the previous checkpoint, every new event sorting after
 * the last one folded, and every private node readable from the store; otherwise a full fold.
 * Both give the same tree and State-Root. Objects are written first, then both refs move in one
 * compare-and-swap transaction.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { blake3Bytes, contentId } from '../codec/blake3.js';
import { canonicalBytes, parseJson } from '../codec/canonical-json.js';
import { GatosError, hasCode } from '../errors.js';
import { findTreeEntry, readCommit, serializeCommit, serializeTree } from '../git/object-codec.js';
import { hashObject, ZERO_OID } from '../git/oid.js';
import type { GitObject, Oid, RefEntry } from '../git/ports.js';
import { type Trailer, withTrailers } from '../git/trailers.js';
import type { Ledger } from '../ledger/context.js';
import { createKey, hasKey, loadPrivateKey, publicKeyId, signBytes } from '../ledger/keys.js';
import { readActivePolicy } from '../ledger/policy-store.js';
import { addActorKey, keysOf, readTrust, updateTrust } from '../ledger/trust.js';
import type { ComputePool } from '../scheduler/pool.js';
import { packageVersion } from '../version.js';
import { type Checkpoint, proofRef, readCheckpoint, specRef, stateRef } from './checkpoint.js';
import { collectEvents, journalHeads } from './events.js';
import { applyDerived, applyEvents, compareKeys, eventKey, type FoldEvent, type FoldStats, type StateMap } from './fold-engine.js';
import { checkFoldSpec, DEFAULT_SPEC, type FoldSpec, foldMath, foldRoot, foldSpecBytes } from './fold-spec.js';
import { resolvePrivate } from './pointers.js';
import { buildStateTree, readStateTree } from './state-tree.js';

export const ENGINE_ACTOR = 'service:gatos-fold';

export interface FoldOptions {
  gitDir: string;
  /** The private store for private nodes. */
  store: string;
  spec?: FoldSpec;
  pool?: ComputePool;
  /** Ignore the previous checkpoint. */
  full?: boolean;
}

export interface FoldResult {
  ns: string;
  commit: Oid;
  state_root: string;
  tree: Oid;
  events: number;
  new_events: number;
  incremental: boolean;
  unchanged: boolean;
  pointers: number;
  skipped_ops: number;
  proof_of_fold?: string;
}

let engine: { program: string; version: string; platform: string } | undefined;

/** What runs folds: the digest of the fold engine's code, versions, platform. */
export function engineInfo(): { program: string; version: string; platform: string } {
  if (!engine) {
    const code = readFileSync(fileURLToPath(new URL('./fold-engine.js', import.meta.url)));
    engine = { program: contentId(code), version: `gatos ${packageVersion()}`, platform: `${platform()}-${arch()}` };
  }
  return engine;
}

/** The spec committed for a namespace at `refs/gatos/folds/<ns>` (`fold.json`), if any. */
export function committedSpec(ctx: Ledger, ns: string): FoldSpec | undefined {
  const commit = ctx.refs.resolve(specRef(ns));
  if (!commit) return undefined;
  const entry = findTreeEntry(ctx.objects.read(readCommit(ctx.objects, commit).tree).body, 'fold.json');
  if (!entry) throw new GatosError('corrupt_object', `${specRef(ns)} has no fold.json`);
  return checkFoldSpec(parseJson(Buffer.from(ctx.objects.read(entry.oid).body).toString('utf8')));
}

/** Commits `spec` as the namespace's fold spec (fast-forward on `refs/gatos/folds/<ns>`). */
export function saveSpec(ctx: Ledger, ns: string, spec: FoldSpec): Oid {
  const previous = ctx.refs.resolve(specRef(ns));
  const blob = ctx.objects.write('blob', foldSpecBytes(spec));
  const tree = ctx.objects.write('tree', serializeTree([{ mode: '100644', name: 'fold.json', oid: blob }]));
  const who = { name: 'gatos', email: 'gatos@gatos.invalid', timestamp: Math.floor(ctx.clock() / 1000), timezone: '+0000' };
  const commit = ctx.objects.write(
    'commit',
    serializeCommit({
      tree,
      parents: previous ? [previous] : [],
      author: who,
      committer: who,
      message: `fold spec for ${ns}\n\nFold-Root: ${foldRoot(spec)}\n`,
    }),
  );
  ctx.refs
    .transaction()
    .update(specRef(ns), commit, previous ?? ZERO_OID)
    .commit();
  return commit;
}

/** The fold engine's signing identity; made and trusted on first use. */
export function engineKey(ctx: Ledger): { key: ReturnType<typeof loadPrivateKey>; publicKey: string } {
  if (!hasKey(ctx.keyDir, ENGINE_ACTOR)) createKey(ctx.keyDir, ENGINE_ACTOR);
  const key = loadPrivateKey(ctx.keyDir, ENGINE_ACTOR);
  const publicKey = publicKeyId(key);
  if (!keysOf(readTrust(ctx.objects, ctx.refs).graph, ENGINE_ACTOR).includes(publicKey))
    updateTrust(ctx.objects, ctx.refs, ctx.clock, `trust: add fold engine key`, (graph) => addActorKey(graph, ENGINE_ACTOR, publicKey));
  return { key, publicKey };
}

/** Policy-Root (the active policy commit, or the zero id) and Policy-Code-Root. */
export function policyRoots(ctx: Ledger): { policyRoot: string; policyCodeRoot: string } {
  const active = readActivePolicy(ctx.objects, ctx.refs);
  const code = active ? canonicalBytes(active.policy) : new Uint8Array(0);
  return { policyRoot: active?.commit ?? ZERO_OID, policyCodeRoot: `sha256:${createHash('sha256').update(code).digest('hex')}` };
}

/** Loads a checkpoint's state (private nodes from the store); undefined when a private node is missing. */
export function loadState(ctx: Ledger, checkpoint: Checkpoint, store: string): StateMap | undefined {
  const state: StateMap = new Map();
  if (!checkpoint.stateTree) return state;
  for (const node of readStateTree(ctx.objects, checkpoint.stateTree, checkpoint.spec)) {
    if (!node.private) {
      state.set(node.path, node.stored);
      continue;
    }
    try {
      const pointer = node.stored as { digest: string; location?: string };
      const bytes = resolvePrivate(pointer.digest, store, pointer.location?.startsWith('file:///') ? pointer.location : undefined);
      state.set(node.path, parseJson(Buffer.from(bytes).toString('utf8')));
    } catch (err) {
      if (hasCode(err, 'pointer_unreachable') || hasCode(err, 'pointer_digest_mismatch')) return undefined;
      throw err;
    }
  }
  return state;
}

/** Folds `events` onto `base` (a copy is not made) and adds the derived nodes. */
export function foldState(base: StateMap, events: readonly FoldEvent[], spec: FoldSpec): { state: StateMap; stats: FoldStats } {
  const stats: FoldStats = { events: 0, ops: 0, skipped: 0 };
  for (const node of spec.derived ?? []) base.delete(node.path);
  applyEvents(base, events, spec, stats);
  applyDerived(base, spec, stats);
  return { state: base, stats };
}

function lengthPrefixed(...parts: string[]): Uint8Array {
  return Buffer.concat(
    parts.flatMap((part) => {
      const bytes = Buffer.from(part);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

const headList = (heads: readonly RefEntry[]) => heads.map((h) => `${h.name}@${h.oid}`);

/** Folds a namespace and commits the checkpoint and its proof; see the module comment. */
export async function fold(ctx: Ledger, ns: string, options: FoldOptions): Promise<FoldResult> {
  const started = performance.now();
  const spec = options.spec ?? committedSpec(ctx, ns) ?? DEFAULT_SPEC;
  const root = foldRoot(spec);
  const { policyRoot, policyCodeRoot } = policyRoots(ctx);
  const heads = journalHeads(ctx.refs, ns);
  const previousCommit = ctx.refs.resolve(stateRef(ns));
  const previous = previousCommit ? readCheckpoint(ctx.objects, previousCommit) : undefined;
  const source = { objects: ctx.objects, gitDir: options.gitDir, ...(options.pool ? { pool: options.pool } : {}) };

  let base: StateMap | undefined;
  let events: FoldEvent[] = [];
  let total = 0;
  if (previous && !options.full && previous.foldRoot === root && previous.policyRoot === policyRoot) {
    const journalsGone = [...previous.heads.keys()].some((ref) => !heads.some((h) => h.name === ref));
    events = journalsGone ? [] : await collectEvents(source, ns, heads, previous.heads);
    const inOrder = !journalsGone && (!previous.last || !events[0] || compareKeys(eventKey(events[0]), previous.last) > 0);
    if (inOrder) {
      if (events.length === 0 && headList(heads).join() === [...previous.heads].map(([r, o]) => `${r}@${o}`).join()) {
        return {
          ns,
          commit: previous.commit,
          state_root: previous.stateRoot,
          tree: previous.tree,
          events: previous.events,
          new_events: 0,
          incremental: true,
          unchanged: true,
          pointers: 0,
          skipped_ops: 0,
        };
      }
      base = loadState(ctx, previous, options.store);
      total = previous.events;
    }
  }
  const incremental = base !== undefined;
  if (!base) {
    events = await collectEvents(source, ns, heads);
    base = new Map();
    total = 0;
  }
  const { state, stats } = foldState(base, events, spec);
  total += events.length;
  const { key, publicKey } = engineKey(ctx);
  const built = buildStateTree(state, spec, options.store, `gatos-node://${publicKey}`);
  const specBlob = foldSpecBytes(spec);
  const foldDir = serializeTree([{ mode: '100644', name: 'spec.json', oid: hashObject('blob', specBlob) }]);
  const rootTree = serializeTree([
    { mode: '40000', name: 'fold', oid: hashObject('tree', foldDir) },
    ...(state.size > 0 ? [{ mode: '40000' as const, name: 'state', oid: built.tree }] : []),
  ]);
  const tree = hashObject('tree', rootTree);
  const last = events.length > 0 ? eventKey(events[events.length - 1] as FoldEvent) : previous?.last;

  // Proof-of-Fold: the JCS envelope, signed (blake3 of its bytes) by the engine's key.
  const ref = stateRef(ns);
  const now = ctx.clock();
  const proof = {
    fold_id: contentId(lengthPrefixed(ref, policyRoot, built.stateRoot)),
    engine: engineInfo(),
    engine_key: publicKey,
    policy_root: policyRoot,
    policy_code_root: policyCodeRoot,
    fold_root: root,
    state_ref: ref,
    inputs: { events: headList(heads), upstreams: [] as string[] },
    ledger_start: incremental && previous ? [...previous.heads].map(([r, o]) => `${r}@${o}`) : [],
    ledger_end: headList(heads),
    output_shape_root: built.stateRoot,
    metrics: { units: events.length, duration_ms: Math.round(performance.now() - started) },
    ts: `${new Date(now).toISOString().slice(0, 19)}Z`,
  };
  const proofBytes = canonicalBytes(proof);
  const proofId = contentId(proofBytes);
  const signature = `ed25519:${Buffer.from(signBytes(key, blake3Bytes(proofBytes))).toString('hex')}#engine:${ENGINE_ACTOR}`;
  const who = { name: 'gatos-fold', email: 'fold@gatos.local', timestamp: Math.floor(now / 1000), timezone: '+0000' };
  const previousProof = ctx.refs.resolve(proofRef(ns));
  const proofTree = serializeTree([{ mode: '100644', name: 'proof.json', oid: hashObject('blob', proofBytes) }]);
  const proofCommitBody = serializeCommit({
    tree: hashObject('tree', proofTree),
    parents: previousProof ? [previousProof] : [],
    author: who,
    committer: who,
    message: withTrailers(`proof of fold ${ns}`, [
      { key: 'Proof-Of-Fold', value: proofId },
      { key: 'State-Root', value: built.stateRoot },
    ]),
  });
  const proofCommit = hashObject('commit', proofCommitBody);

  const trailers: Trailer[] = [
    { key: 'State-Root', value: built.stateRoot },
    ...heads.map((h) => ({ key: 'Ledger-Head', value: `${h.oid} ${h.name}` })),
    { key: 'Policy-Root', value: policyRoot },
    { key: 'Policy-Code-Root', value: policyCodeRoot },
    { key: 'Fold-Engine', value: `gatos-fold@${packageVersion()}+spec@1+num=${foldMath(spec)}+rng=none` },
    { key: 'Fold-Root', value: root },
    { key: 'Fold-Version', value: String(spec.version) },
    { key: 'Fold-Math', value: foldMath(spec) },
    { key: 'Proof-Of-Fold', value: proofId },
    { key: 'Fold-Sig', value: signature },
    { key: 'Proof-Commit', value: proofCommit },
    { key: 'Privacy-Redactions', value: '0' },
    { key: 'Privacy-Pointers', value: String(built.pointers) },
    { key: 'Fold-Events', value: String(total) },
    ...(last ? [{ key: 'Fold-Last', value: last }] : []),
  ];
  const commitBody = serializeCommit({
    tree,
    parents: previousCommit ? [previousCommit] : [],
    author: who,
    committer: who,
    message: withTrailers(`fold ${ns}: ${total} events, ${state.size} nodes`, trailers),
  });
  const commit = hashObject('commit', commitBody);
  const objects: GitObject[] = [
    ...(state.size > 0 ? built.objects : []),
    { type: 'blob', body: specBlob },
    { type: 'tree', body: foldDir },
    { type: 'tree', body: rootTree },
    { type: 'blob', body: proofBytes },
    { type: 'tree', body: proofTree },
    { type: 'commit', body: proofCommitBody },
    { type: 'commit', body: commitBody },
  ];
  if (objects.length >= 64) ctx.objects.writeMany(objects);
  else for (const object of objects) ctx.objects.write(object.type, object.body);
  try {
    ctx.refs
      .transaction()
      .update(ref, commit, previousCommit ?? ZERO_OID)
      .update(proofRef(ns), proofCommit, previousProof ?? ZERO_OID)
      .commit();
  } catch (err) {
    if (hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked'))
      throw new GatosError('state_conflict', `another fold of ${ns} moved ${ref} first; run the fold again`, { ns }, { cause: err });
    throw err;
  }
  return {
    ns,
    commit,
    state_root: built.stateRoot,
    tree,
    events: total,
    new_events: events.length,
    incremental,
    unchanged: false,
    pointers: built.pointers,
    skipped_ops: stats.skipped,
    proof_of_fold: proofId,
  };
}
