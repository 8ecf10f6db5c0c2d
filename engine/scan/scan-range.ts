/**
 * Scans a commit range of one ref into decoded rows: commit metadata, git-parsed trailers, and
 * the envelope the commit carries (`event/envelope.cbor` for journal events, DAG-CBOR; or
 * `message/envelope.json` for message-plane commits). Pure engine code: worker threads call it,
 * and so can tests and single-threaded callers.
 */
import { decodeEnvelope } from '../codec/envelope-json.js';
import { type Commit, findTreeEntry } from '../git/object-codec.js';
import type { ObjectStore, Oid } from '../git/ports.js';
import { parseTrailers } from '../git/trailers.js';
import { type FrontierEntry, walkCommits } from '../git/walk.js';

export interface ScanRow {
  commit: Oid;
  ref: string;
  parents: Oid[];
  /** `Name <email>` of the author. */
  author: string;
  /** Committer time, seconds since the epoch. */
  ts: number;
  message: string;
  trailers: Array<{ key: string; value: string }>;
  /** Path of the envelope in the commit's tree, or null when the commit carries none. */
  envelopePath: string | null;
  /** The decoded envelope as JSON-compatible data (DAG-JSON forms for bytes and links). */
  envelope: unknown;
}

export interface ScanStep {
  rows: ScanRow[];
  frontier: FrontierEntry[];
}

const ENVELOPES: ReadonlyArray<readonly [dir: string, file: string, format: 'dag-cbor' | 'json']> = [
  ['event', 'envelope.cbor', 'dag-cbor'],
  ['message', 'envelope.json', 'json'],
];

function readEnvelope(store: ObjectStore, commit: Commit): { path: string | null; value: unknown } {
  const root = store.read(commit.tree).body;
  for (const [dir, file, format] of ENVELOPES) {
    const sub = findTreeEntry(root, dir);
    if (sub?.mode !== '40000') continue;
    const blob = findTreeEntry(store.read(sub.oid).body, file);
    if (!blob) continue;
    return { path: `${dir}/${file}`, value: decodeEnvelope(store.read(blob.oid).body, format) };
  }
  return { path: null, value: null };
}

/** Decodes up to `limit` commits of the range; returns them and where to resume. */
export function scanRange(store: ObjectStore, ref: string, frontier: readonly FrontierEntry[], limit: number): ScanStep {
  const rows: ScanRow[] = [];
  const step = walkCommits(store, frontier, limit, (oid, commit) => {
    const envelope = readEnvelope(store, commit);
    rows.push({
      commit: oid,
      ref,
      parents: commit.parents,
      author: `${commit.author.name} <${commit.author.email}>`,
      ts: commit.committer.timestamp,
      message: commit.message,
      trailers: parseTrailers(commit.message),
      envelopePath: envelope.path,
      envelope: envelope.value,
    });
  });
  return { rows, frontier: step.frontier };
}
