/**
 * Policy bundles in the repository: `gatos policy publish DIR` commits a bundle directory to
 * `refs/gatos/policies/<bundle-id>` (bundle-id = blake3 of the DAG-CBOR map path -> bytes) with
 * `Policy-Root` and `Policy-Code-Root` trailers, parented on the active bundle so that
 * `refs/gatos/policies/active` only ever moves fast-forward. Denials are audited as commits under
 * `refs/gatos/audit/policy/deny/<ulid>` (decision 0004).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { blake3Hex } from '../codec/blake3.js';
import { canonicalize, parseJson } from '../codec/canonical-json.js';
import { encodeDagCbor } from '../codec/dag-cbor.js';
import { GatosError } from '../errors.js';
import { findTreeEntry, readCommit, serializeCommit, serializeTree } from '../git/object-codec.js';
import { ZERO_OID } from '../git/oid.js';
import type { ObjectStore, Oid, RefStore } from '../git/ports.js';
import { withTrailers } from '../git/trailers.js';
import { descendsFrom } from '../git/walk.js';
import type { Clock } from './clock.js';
import { checkPolicy, type Decision, type Policy } from './policy.js';

export const POLICY_PREFIX = 'refs/gatos/policies/';
export const ACTIVE_POLICY = `${POLICY_PREFIX}active`;
const POLICY_FILE = 'policy.json';
const SYSTEM = { name: 'gatos', email: 'gatos@gatos.invalid', timezone: '+0000' };

function signature(clock: Clock) {
  return { ...SYSTEM, timestamp: Math.floor(clock() / 1000) };
}

/** Reads a bundle directory (top-level regular files) and validates its policy.json. */
export function readBundle(dir: string): { files: Map<string, Buffer>; policy: Policy } {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new GatosError('invalid_argument', `cannot read bundle directory ${dir}: ${(err as Error).message}`, { dir });
  }
  const files = new Map<string, Buffer>();
  for (const name of names) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) throw new GatosError('invalid_policy', `bundle entries must be plain files; ${name} is not`, { name });
    files.set(name, readFileSync(path));
  }
  const text = files.get(POLICY_FILE);
  if (!text) throw new GatosError('invalid_policy', `bundle ${dir} has no ${POLICY_FILE}`, { dir });
  let parsed: unknown;
  try {
    parsed = parseJson(text.toString('utf8'));
  } catch (err) {
    throw new GatosError('invalid_policy', `${POLICY_FILE}: ${(err as Error).message}`);
  }
  return { files, policy: checkPolicy(parsed) };
}

/** Commits a bundle; publishing the same content again returns the existing bundle. */
export function publishBundle(
  objects: ObjectStore,
  refs: RefStore,
  clock: Clock,
  dir: string,
): { bundleId: string; commit: Oid; ref: string; created: boolean } {
  const { files } = readBundle(dir);
  const bundleId = blake3Hex(encodeDagCbor(Object.fromEntries(files)));
  const ref = `${POLICY_PREFIX}${bundleId}`;
  const existing = refs.resolve(ref);
  if (existing) return { bundleId, commit: existing, ref, created: false };
  const entries = [...files].map(([name, bytes]) => ({ mode: '100644' as const, name, oid: objects.write('blob', bytes) }));
  const tree = objects.write('tree', serializeTree(entries));
  const codeRoot = createHash('sha256')
    .update(files.get(POLICY_FILE) as Buffer)
    .digest('hex');
  const active = refs.resolve(ACTIVE_POLICY);
  const message = withTrailers(`policy: publish bundle ${bundleId.slice(0, 16)}`, [
    { key: 'Policy-Root', value: `blake3:${bundleId}` },
    { key: 'Policy-Code-Root', value: `sha256:${codeRoot}` },
  ]);
  const who = signature(clock);
  const commit = objects.write('commit', serializeCommit({ tree, parents: active ? [active] : [], author: who, committer: who, message }));
  refs.transaction().create(ref, commit).commit();
  return { bundleId, commit, ref, created: true };
}

/** Moves `active` to a published bundle, fast-forward only, by CAS. */
export function activateBundle(objects: ObjectStore, refs: RefStore, bundleId: string): { commit: Oid; previous: Oid } {
  if (!/^[0-9a-f]{64}$/.test(bundleId))
    throw new GatosError('invalid_argument', `bundle id must be 64 lowercase hex digits, got ${JSON.stringify(bundleId)}`);
  const commit = refs.resolve(`${POLICY_PREFIX}${bundleId}`);
  if (!commit) throw new GatosError('policy_not_found', `no published bundle ${bundleId} (gatos policy publish DIR)`, { bundleId });
  const previous = refs.resolve(ACTIVE_POLICY) ?? ZERO_OID;
  if (previous === commit) return { commit, previous };
  if (previous !== ZERO_OID && !descendsFrom(objects, commit, previous)) {
    throw new GatosError(
      'non_fast_forward',
      `bundle ${bundleId} does not descend from the active policy ${previous}; publish it again on top of the active one`,
      { bundleId, active: previous },
    );
  }
  refs.transaction().update(ACTIVE_POLICY, commit, previous).commit();
  return { commit, previous };
}

const activeCache = new WeakMap<ObjectStore, { head: Oid; policy: Policy }>();

/** The active policy and its commit, or undefined when none is active. */
export function readActivePolicy(objects: ObjectStore, refs: RefStore): { commit: Oid; policy: Policy } | undefined {
  const head = refs.resolve(ACTIVE_POLICY);
  if (!head) return undefined;
  const cached = activeCache.get(objects);
  if (cached?.head === head) return { commit: head, policy: cached.policy };
  const entry = findTreeEntry(objects.read(readCommit(objects, head).tree).body, POLICY_FILE);
  if (!entry) throw new GatosError('corrupt_object', `active policy ${head} has no ${POLICY_FILE}`, { commit: head });
  const policy = checkPolicy(parseJson(Buffer.from(objects.read(entry.oid).body).toString('utf8')));
  activeCache.set(objects, { head, policy });
  return { commit: head, policy };
}

export interface DenyRecord {
  ulid: string;
  actor: string;
  ns: string;
  type: string;
  target: string;
  policyRoot: Oid;
  decision: Decision;
}

/** Records one denial as a commit on `refs/gatos/audit/policy/deny/<ulid>`. */
export function auditDeny(objects: ObjectStore, refs: RefStore, clock: Clock, record: DenyRecord): Oid {
  const ref = `refs/gatos/audit/policy/deny/${record.ulid}`;
  const body = {
    decision: 'deny',
    rule: record.decision.rule,
    reason: record.decision.reason,
    actor: record.actor,
    ns: record.ns,
    type: record.type,
    target: record.target,
    policy_root: record.policyRoot,
    ulid: record.ulid,
  };
  const blob = objects.write('blob', Buffer.from(`${canonicalize(body)}\n`));
  const sub = objects.write('tree', serializeTree([{ mode: '100644', name: 'decision.json', oid: blob }]));
  const tree = objects.write('tree', serializeTree([{ mode: '40000', name: 'audit', oid: sub }]));
  const previous = refs.resolve(ref) ?? ZERO_OID;
  const message = withTrailers(`policy: deny ${record.type} by ${record.actor}`, [
    { key: 'Policy-Rule', value: record.decision.rule },
    { key: 'Policy-Root', value: record.policyRoot },
    { key: 'Decision', value: 'deny' },
  ]);
  const who = signature(clock);
  const commit = objects.write(
    'commit',
    serializeCommit({ tree, parents: previous === ZERO_OID ? [] : [previous], author: who, committer: who, message }),
  );
  refs.transaction().update(ref, commit, previous).commit();
  return commit;
}
