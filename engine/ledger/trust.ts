/**
 * The trust graph: which public keys belong to which actor, and which actors form which group
 * (`@leads`). It lives as canonical JSON (`graph.json`) in the tree of the fast-forward-only ref
 * `refs/gatos/trust`, so its history is auditable with `git log refs/gatos/trust`.
 */
import { canonicalize, parseJson } from '../codec/canonical-json.js';
import { GatosError, hasCode } from '../errors.js';
import { actorPath } from '../git/gatos-refs.js';
import { findTreeEntry, readCommit, serializeCommit, serializeTree } from '../git/object-codec.js';
import { ZERO_OID } from '../git/oid.js';
import type { ObjectStore, Oid, RefStore } from '../git/ports.js';
import type { Clock } from './clock.js';

export const TRUST_REF = 'refs/gatos/trust';

export interface TrustGraph {
  version: 1;
  actors: Record<string, { keys: string[] }>;
  groups: Record<string, string[]>;
}

const GROUP_RE = /^@[A-Za-z0-9._-]+$/;

export function emptyTrust(): TrustGraph {
  return { version: 1, actors: {}, groups: {} };
}

export function assertGroup(group: string): string {
  if (!GROUP_RE.test(group))
    throw new GatosError('invalid_argument', `group must look like @name, got ${JSON.stringify(group)}`, { group });
  return group;
}

/** The last graph read per object store: unchanged while the ref points at the same commit. */
const lastRead = new WeakMap<ObjectStore, { head: Oid; text: string }>();

/** The trust graph at the ref's head (a fresh copy: callers may change it). */
export function readTrust(objects: ObjectStore, refs: RefStore): { graph: TrustGraph; head: Oid } {
  const head = refs.resolve(TRUST_REF);
  if (!head) return { graph: emptyTrust(), head: ZERO_OID };
  const cached = lastRead.get(objects);
  if (cached?.head === head) return { graph: JSON.parse(cached.text) as TrustGraph, head };
  const commit = readCommit(objects, head);
  const entry = findTreeEntry(objects.read(commit.tree).body, 'graph.json');
  if (!entry) throw new GatosError('corrupt_object', `${TRUST_REF} has no graph.json`, { commit: head });
  const text = Buffer.from(objects.read(entry.oid).body).toString('utf8');
  const graph = parseJson(text) as TrustGraph;
  lastRead.set(objects, { head, text });
  return { graph, head };
}

/** Keys of an actor (empty when unknown). */
export function keysOf(graph: TrustGraph, actor: string): string[] {
  return graph.actors[actor]?.keys ?? [];
}

/** Members of `@group`, or the actor itself for a plain actor id. */
export function membersOf(graph: TrustGraph, who: string): string[] {
  return who.startsWith('@') ? (graph.groups[who] ?? []) : [who];
}

/**
 * Applies `change` to the graph and commits it on top of the current head by CAS; retries a
 * few times when another writer moved the ref in between.
 */
export function updateTrust(objects: ObjectStore, refs: RefStore, clock: Clock, message: string, change: (graph: TrustGraph) => void): Oid {
  for (let attempt = 0; ; attempt++) {
    const { graph, head } = readTrust(objects, refs);
    change(graph);
    const blob = objects.write('blob', Buffer.from(`${canonicalize(graph)}\n`));
    const tree = objects.write('tree', serializeTree([{ mode: '100644', name: 'graph.json', oid: blob }]));
    const who = { name: 'gatos', email: 'gatos@gatos.invalid', timestamp: Math.floor(clock() / 1000), timezone: '+0000' };
    const commit = objects.write(
      'commit',
      serializeCommit({ tree, parents: head === ZERO_OID ? [] : [head], author: who, committer: who, message: `${message}\n` }),
    );
    try {
      refs.transaction().update(TRUST_REF, commit, head).commit();
      return commit;
    } catch (err) {
      if (attempt >= 4 || !(hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked'))) throw err;
    }
  }
}

/** Adds a public key to an actor (and the actor to groups). */
export function addActorKey(graph: TrustGraph, actor: string, publicKey: string, groups: readonly string[] = []): void {
  actorPath(actor);
  graph.actors[actor] ??= { keys: [] };
  const entry = graph.actors[actor];
  if (!entry.keys.includes(publicKey)) entry.keys.push(publicKey);
  for (const group of groups) {
    graph.groups[assertGroup(group)] ??= [];
    const members = graph.groups[group] as string[];
    if (!members.includes(actor)) members.push(actor);
    members.sort();
  }
}
