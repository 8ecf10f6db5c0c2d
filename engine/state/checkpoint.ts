/**
 * State checkpoints on `refs/gatos/state/<ns>`: a commit whose tree holds `state/` (one blob per
 * node) and `fold/spec.json` (the canonical spec that made it), with the SPEC §5.3 trailers
 *
 *   State-Root, Ledger-Head (one per journal: `<oid> <ref>`), Policy-Root, Policy-Code-Root,
 *   Fold-Engine, Fold-Root, Fold-Version, Fold-Math, Proof-Of-Fold, Fold-Sig,
 *   Privacy-Redactions, Privacy-Pointers, Fold-Events, Fold-Last, Proof-Commit.
 *
 * This module names the refs and reads checkpoints back; fold.ts writes them.
 */
import { parseJson } from '../codec/canonical-json.js';
import { GatosError } from '../errors.js';
import { namespacePath } from '../git/gatos-refs.js';
import { findTreeEntry, readCommit } from '../git/object-codec.js';
import type { ObjectStore, Oid, RefStore } from '../git/ports.js';
import { parseTrailers, type Trailer, trailerValue } from '../git/trailers.js';
import { checkFoldSpec, type FoldSpec } from './fold-spec.js';

export const stateRef = (ns: string) => `refs/gatos/state/${namespacePath(ns)}`;
export const proofRef = (ns: string) => `refs/gatos/audit/proofs/folds/${namespacePath(ns)}`;
/** Where a namespace's committed fold spec lives (`fold.json` in the commit's tree). */
export const specRef = (ns: string) => `refs/gatos/folds/${namespacePath(ns)}`;

export interface Checkpoint {
  commit: Oid;
  parent?: Oid;
  tree: Oid;
  /** The `state/` subtree (absent when the state is empty). */
  stateTree?: Oid;
  specBytes: Uint8Array;
  spec: FoldSpec;
  trailers: Trailer[];
  stateRoot: string;
  /** Journal ref -> head oid the fold covered. */
  heads: Map<string, Oid>;
  events: number;
  /** `<ulid> <actor> <commit>` of the last event folded, when any. */
  last?: string;
  foldRoot: string;
  policyRoot: string;
}

export function readCheckpoint(objects: ObjectStore, commit: Oid): Checkpoint {
  const parsed = readCommit(objects, commit);
  const trailers = parseTrailers(parsed.message);
  const root = objects.read(parsed.tree).body;
  const fold = findTreeEntry(root, 'fold');
  const specEntry = fold && findTreeEntry(objects.read(fold.oid).body, 'spec.json');
  const stateRoot = trailerValue(trailers, 'State-Root');
  if (!specEntry || !stateRoot) throw new GatosError('not_a_checkpoint', `commit ${commit} is not a state checkpoint`, { commit });
  const specBytes = objects.read(specEntry.oid).body;
  const heads = new Map<string, Oid>();
  for (const { key, value } of trailers) {
    if (key.toLowerCase() !== 'ledger-head') continue;
    const [oid, ref] = value.split(' ');
    if (oid && ref) heads.set(ref, oid);
  }
  const state = findTreeEntry(root, 'state');
  const checkpoint: Checkpoint = {
    commit,
    tree: parsed.tree,
    specBytes,
    spec: checkFoldSpec(parseJson(Buffer.from(specBytes).toString('utf8'))),
    trailers,
    stateRoot,
    heads,
    events: Number(trailerValue(trailers, 'Fold-Events') ?? 0),
    foldRoot: trailerValue(trailers, 'Fold-Root') ?? '',
    policyRoot: trailerValue(trailers, 'Policy-Root') ?? '',
  };
  if (parsed.parents[0]) checkpoint.parent = parsed.parents[0];
  if (state) checkpoint.stateTree = state.oid;
  const last = trailerValue(trailers, 'Fold-Last');
  if (last) checkpoint.last = last;
  return checkpoint;
}

/** The checkpoint a user named: a commit id, or a namespace's current one. */
export function resolveCheckpoint(objects: ObjectStore, refs: RefStore, ns: string, at?: string): Checkpoint {
  const commit = at ?? refs.resolve(stateRef(ns));
  if (!commit) throw new GatosError('state_not_found', `namespace ${ns} has no state checkpoint yet (run: gatos fold --ns ${ns})`, { ns });
  const oid = /^[0-9a-f]{40}$/.test(commit) ? commit : refs.resolve(commit);
  if (!oid) throw new GatosError('state_not_found', `no checkpoint ${commit}`, { commit });
  return readCheckpoint(objects, oid);
}
