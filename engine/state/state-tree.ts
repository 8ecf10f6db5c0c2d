/**
 * State as Git trees, and its root. Each node `a/b` is one canonical JSON blob at
 * `state/a/b.json`; a node matching a `private` rule of the spec is stored in the private store
 * and its blob is the opaque pointer instead. State-Root is the BLAKE3 Merkle root (codec/merkle)
 * over the nodes in byte order of path, leaf = blake3(path || 0x00 || blake3(canonical value)):
 * the value's digest is the pointer's `digest` for private nodes, so the root is the same
 * whether a node is public or private, and one node can be proven without the others.
 */
import { blake3Bytes } from '../codec/blake3.js';
import { canonicalBytes, parseJson } from '../codec/canonical-json.js';
import { merkleProof, merkleRoot, type ProofStep } from '../codec/merkle.js';
import { GatosError } from '../errors.js';
import { parseTree, serializeTree, type TreeEntry } from '../git/object-codec.js';
import { hashObject } from '../git/oid.js';
import type { GitObject, ObjectStore, Oid } from '../git/ports.js';
import type { StateMap } from './fold-engine.js';
import type { FoldSpec, PrivateRule } from './fold-spec.js';
import { type OpaquePointer, putPrivate } from './pointers.js';

function globToRegExp(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('/')
      .map((c) => (c === '*' ? '[^/]+' : c.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('/')}$`,
  );
}

/** The private rule a node path falls under, if any. */
export function privateRuleFor(spec: FoldSpec, path: string): PrivateRule | undefined {
  return spec.private?.find((rule) => globToRegExp(rule.path).test(path));
}

function sortedPaths(paths: Iterable<string>): string[] {
  return [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function leaf(path: string, valueDigest: Uint8Array): Uint8Array {
  return blake3Bytes(Buffer.concat([Buffer.from(path), Buffer.from([0]), valueDigest]));
}

function hexDigest(hex: string): Uint8Array {
  return Buffer.from(hex, 'hex');
}

export interface BuiltState {
  /** Blobs and trees of `state/` (root tree last). */
  objects: GitObject[];
  tree: Oid;
  stateRoot: string;
  pointers: number;
}

/**
 * Builds the `state/` tree, storing private nodes in `store`; returns objects and State-Root.
 * A private rule without a location points at `defaultLocation` (the folding node), so the
 * tree does not depend on where the store happens to live on disk.
 */
export function buildStateTree(state: StateMap, spec: FoldSpec, store: string, defaultLocation: string): BuiltState {
  const paths = sortedPaths(state.keys());
  const leaves: Uint8Array[] = [];
  const objects: GitObject[] = [];
  let pointers = 0;
  // Directory path -> entries; '' is the root of state/.
  const dirs = new Map<string, TreeEntry[]>([['', []]]);
  const ensureDir = (dir: string): TreeEntry[] => {
    let entries = dirs.get(dir);
    if (!entries) {
      entries = [];
      dirs.set(dir, entries);
      const slash = dir.lastIndexOf('/');
      ensureDir(slash === -1 ? '' : dir.slice(0, slash));
    }
    return entries;
  };
  for (const path of paths) {
    const bytes = canonicalBytes(state.get(path));
    const digest = blake3Bytes(bytes);
    leaves.push(leaf(path, digest));
    const rule = privateRuleFor(spec, path);
    let blob: Uint8Array = bytes;
    if (rule) {
      const pointer: OpaquePointer = putPrivate(bytes, rule.location ?? defaultLocation, rule.capability, store);
      blob = canonicalBytes(pointer);
      pointers++;
    }
    objects.push({ type: 'blob', body: blob });
    const slash = path.lastIndexOf('/');
    const dir = slash === -1 ? '' : path.slice(0, slash);
    ensureDir(dir).push({ mode: '100644', name: `${path.slice(slash + 1)}.json`, oid: hashObject('blob', blob) });
  }
  // Deepest directories first, so each tree's children exist when it is serialized.
  const order = [...dirs.keys()].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : 1));
  const treeOids = new Map<string, Oid>();
  for (const dir of order) {
    if (dir === '') continue;
    const body = serializeTree(dirs.get(dir) as TreeEntry[]);
    objects.push({ type: 'tree', body });
    treeOids.set(dir, hashObject('tree', body));
    const slash = dir.lastIndexOf('/');
    (dirs.get(slash === -1 ? '' : dir.slice(0, slash)) as TreeEntry[]).push({
      mode: '40000',
      name: dir.slice(slash + 1),
      oid: treeOids.get(dir) as Oid,
    });
  }
  const rootBody = serializeTree(dirs.get('') as TreeEntry[]);
  objects.push({ type: 'tree', body: rootBody });
  return { objects, tree: hashObject('tree', rootBody), stateRoot: `blake3:${Buffer.from(merkleRoot(leaves)).toString('hex')}`, pointers };
}

export interface StoredNode {
  path: string;
  /** The blob as stored: the value, or the pointer of a private node. */
  stored: unknown;
  private: boolean;
  /** blake3 of the canonical value (the pointer's digest for private nodes), hex. */
  valueDigest: string;
}

/** Reads every node of a `state/` tree (public values, private pointers), in path order. */
export function readStateTree(objects: ObjectStore, tree: Oid, spec: FoldSpec): StoredNode[] {
  const nodes: StoredNode[] = [];
  const walk = (oid: Oid, prefix: string) => {
    for (const entry of parseTree(objects.read(oid).body)) {
      if (entry.mode === '40000') {
        walk(entry.oid, `${prefix}${entry.name}/`);
        continue;
      }
      if (!entry.name.endsWith('.json')) throw new GatosError('corrupt_state', `unexpected file ${prefix}${entry.name} in a state tree`);
      const path = `${prefix}${entry.name.slice(0, -5)}`;
      const bytes = objects.read(entry.oid).body;
      const stored = parseJson(Buffer.from(bytes).toString('utf8'));
      const isPrivate = privateRuleFor(spec, path) !== undefined;
      const digest = isPrivate
        ? String((stored as { digest?: unknown }).digest ?? '').slice(7)
        : Buffer.from(blake3Bytes(bytes)).toString('hex');
      nodes.push({ path, stored, private: isPrivate, valueDigest: digest });
    }
  };
  walk(tree, '');
  return nodes.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** State-Root recomputed from stored nodes. */
export function stateRootOf(nodes: readonly StoredNode[]): string {
  return `blake3:${Buffer.from(merkleRoot(nodes.map((n) => leaf(n.path, hexDigest(n.valueDigest))))).toString('hex')}`;
}

/** A Merkle proof that one node (by its value digest) is in the state with this root. */
export function nodeProof(nodes: readonly StoredNode[], path: string): { leaf: string; steps: ProofStep[] } | undefined {
  const index = nodes.findIndex((n) => n.path === path);
  if (index === -1) return undefined;
  const leaves = nodes.map((n) => leaf(n.path, hexDigest(n.valueDigest)));
  return { leaf: Buffer.from(leaves[index] as Uint8Array).toString('hex'), steps: merkleProof(leaves, index) };
}

/** The leaf hash of a node path and its value's canonical bytes: the start of a proof check. */
export function leafOf(path: string, valueBytes: Uint8Array): Uint8Array {
  return leaf(path, blake3Bytes(valueBytes));
}

/** State-Root of an in-memory state, without writing anything (replays compare with this). */
export function rootOfState(state: StateMap): string {
  const leaves = sortedPaths(state.keys()).map((path) => leafOf(path, canonicalBytes(state.get(path))));
  return `blake3:${Buffer.from(merkleRoot(leaves)).toString('hex')}`;
}
