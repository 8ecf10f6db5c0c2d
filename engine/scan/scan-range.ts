/**
 * Scans a commit range of one ref into decoded rows: commit metadata, git-parsed trailers, and
 * the envelope the commit carries (`event/envelope.cbor` for journal events, DAG-CBOR; or
 * `message/envelope.json` for message-plane commits). Pure engine code: worker threads call it,
 * and so can tests and single-threaded callers.
 */
import { decodeEnvelope } from '../codec/envelope-json.js';
import { GatosError } from '../errors.js';
import { type Commit, findTreeEntry, readTransient } from '../git/object-codec.js';
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

/**
 * The commit's envelope, decoded. Each tree and blob is read transiently (`readTransient`): its
 * body is done with before the next read.
 */
function readEnvelope(store: ObjectStore, oid: Oid, commit: Commit): { path: string | null; value: unknown } {
  let root: Uint8Array | undefined;
  for (const [dir, file, format] of ENVELOPES) {
    root ??= readTransient(store, commit.tree).body;
    const sub = findTreeEntry(root, dir);
    if (sub?.mode !== '40000') continue;
    // Reading the subdirectory may reuse the root's memory: read again if the loop goes on.
    root = undefined;
    const blob = findTreeEntry(readTransient(store, sub.oid).body, file);
    if (!blob) continue;
    const path = `${dir}/${file}`;
    try {
      return { path, value: decodeEnvelope(readTransient(store, blob.oid).body, format) };
    } catch (err) {
      // Which of a million commits holds it is what the reader needs to know.
      if (!(err instanceof GatosError) || err.code !== 'corrupt_object') throw err;
      throw new GatosError(
        'corrupt_object',
        `${path} of commit ${oid}: ${err.message}`,
        { ...err.data, commit: oid, path },
        { cause: err },
      );
    }
  }
  return { path: null, value: null };
}

/** The decoded row of one commit of `ref`. */
export function scanRow(store: ObjectStore, ref: string, oid: Oid, commit: Commit): ScanRow {
  const envelope = readEnvelope(store, oid, commit);
  return {
    commit: oid,
    ref,
    parents: commit.parents,
    author: `${commit.author.name} <${commit.author.email}>`,
    ts: commit.committer.timestamp,
    message: commit.message,
    trailers: parseTrailers(commit.message),
    envelopePath: envelope.path,
    envelope: envelope.value,
  };
}

/**
 * Visits up to `limit` commits of the range as decoded rows; returns where to resume. Each row
 * is handed over as soon as it is built, so callers that serialize rows right away keep no
 * decoded objects alive (which is what makes long scans cheap for the garbage collector).
 */
export function visitRows(
  store: ObjectStore,
  ref: string,
  frontier: readonly FrontierEntry[],
  limit: number,
  onRow: (row: ScanRow) => void,
): FrontierEntry[] {
  return walkCommits(store, frontier, limit, (oid, commit) => onRow(scanRow(store, ref, oid, commit))).frontier;
}

/** Decodes up to `limit` commits of the range; returns them and where to resume. */
export function scanRange(store: ObjectStore, ref: string, frontier: readonly FrontierEntry[], limit: number): ScanStep {
  const rows: ScanRow[] = [];
  const next = visitRows(store, ref, frontier, limit, (row) => rows.push(row));
  return { rows, frontier: next };
}

/** Like `scanRange`, but the rows arrive as one UTF-8 JSON array, encoded row by row. */
export function scanRangeEncoded(
  store: ObjectStore,
  ref: string,
  frontier: readonly FrontierEntry[],
  limit: number,
): { rows: Uint8Array; count: number; frontier: FrontierEntry[] } {
  const out = new JsonArrayWriter();
  const next = visitRows(store, ref, frontier, limit, (row) => out.push(JSON.stringify(row)));
  return { rows: out.finish(), count: out.count, frontier: next };
}

const encoder = new TextEncoder();

/** Appends JSON texts to a growing UTF-8 buffer as the elements of one array. */
class JsonArrayWriter {
  count = 0;
  private buffer = new Uint8Array(1 << 16);
  private length = 1;

  constructor() {
    this.buffer[0] = 0x5b; // [
  }

  push(json: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; +1 for the comma.
    this.reserve(json.length * 3 + 1);
    if (this.count > 0) this.buffer[this.length++] = 0x2c; // ,
    this.length += encoder.encodeInto(json, this.buffer.subarray(this.length)).written;
    this.count++;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes + 1 <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes + 1) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** The finished array in a buffer of its own (transferable). */
  finish(): Uint8Array {
    this.reserve(1);
    this.buffer[this.length++] = 0x5d; // ]
    return this.buffer.slice(0, this.length);
  }
}
