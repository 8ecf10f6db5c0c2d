/**
 * Extractors of the snapshot tables: state checkpoints (nodes, pointers), jobs and governance
 * artifacts as the refs hold them now, read on the export's own thread while the pool reads the
 * logs (extract.ts). Pointers are exported as metadata only, never dereferenced.
 */
import { parseJson } from '../engine/codec/canonical-json.js';
import { findTreeEntry, parseTree, readCommit } from '../engine/git/object-codec.js';
import type { Oid } from '../engine/git/ports.js';
import { parseTrailers, trailerValue } from '../engine/git/trailers.js';
import { listJobs, readJob } from '../engine/jobs/store.js';
import { readCheckpoint } from '../engine/state/checkpoint.js';
import { readStateTree } from '../engine/state/state-tree.js';
import type { Source } from './extract.js';
import { jsonCell, type Row } from './tables.js';

/** The current checkpoint of every namespace: its nodes, and pointers for private ones. */
export function stateRows(source: Source): {
  state_nodes: Row[];
  pointers: Row[];
  checkpoints: Array<{ ns: string; commit: Oid; stateRoot: string }>;
} {
  const nodes: Row[] = [];
  const pointers: Row[] = [];
  const checkpoints: Array<{ ns: string; commit: Oid; stateRoot: string }> = [];
  for (const { name, oid } of source.refs.list('refs/gatos/state/')) {
    const ns = name.slice('refs/gatos/state/'.length);
    const checkpoint = readCheckpoint(source.objects, oid);
    checkpoints.push({ ns, commit: oid, stateRoot: checkpoint.stateRoot });
    const ts = readCommit(source.objects, oid).committer.timestamp;
    if (!checkpoint.stateTree) continue;
    for (const node of readStateTree(source.objects, checkpoint.stateTree, checkpoint.spec)) {
      nodes.push({
        id: `${oid}:${node.path}`,
        state_ref: oid,
        ns,
        path: node.path,
        digest: `blake3:${node.valueDigest}`,
        shape: jsonCell(node.stored),
        private: node.private ? 1 : 0,
        created_ts: ts,
        updated_ts: ts,
      });
      if (!node.private) continue;
      const pointer = node.stored as { digest: string; location: string; capability: string; size?: number };
      pointers.push({
        digest: pointer.digest,
        location: pointer.location,
        capability: pointer.capability,
        size: pointer.size ?? null,
        state_ref: oid,
        path: node.path,
        created_ts: ts,
        updated_ts: ts,
      });
    }
  }
  return { state_nodes: nodes, pointers, checkpoints };
}

const seconds = (iso: unknown) => (typeof iso === 'string' && !Number.isNaN(Date.parse(iso)) ? Math.floor(Date.parse(iso) / 1000) : null);

/** Every job with its status, as `gatos jobs ls` sees it at `now`. */
export function jobRows(source: Source, now: number): Row[] {
  const rows: Row[] = [];
  for (const view of listJobs(source.objects, source.refs, now)) {
    const hex = view.job_id.slice(7);
    const job = readJob(source.objects, source.refs, hex);
    const jobTime = readCommit(source.objects, view.job_commit).committer.timestamp;
    let startedAt: number | null = null;
    let finishedAt: number | null = null;
    let proof: string | null = null;
    let updated = jobTime;
    if (view.result) {
      const result = readCommit(source.objects, view.result);
      updated = result.committer.timestamp;
      proof = trailerValue(parseTrailers(result.message), 'Proof-Of-Execution') ?? null;
      const poeEntry = findTreeEntry(source.objects.read(result.tree).body, 'poe.json');
      if (poeEntry) {
        const poe = parseJson(Buffer.from(source.objects.read(poeEntry.oid).body).toString('utf8')) as Record<string, unknown>;
        startedAt = seconds(poe.started_at);
        finishedAt = seconds(poe.finished_at);
      }
    }
    rows.push({
      id: view.job_id,
      status: view.status,
      attempt: view.attempt,
      worker: view.worker ?? null,
      exit_code: view.exit_code ?? null,
      started_at: startedAt,
      finished_at: finishedAt,
      proof_digest: proof,
      job_commit: view.job_commit,
      result_commit: view.result ?? null,
      manifest: jsonCell(job?.manifest),
      created_ts: jobTime,
      updated_ts: updated,
    });
  }
  return rows;
}

const GOVERNANCE = [
  ['governance_proposals', 'refs/gatos/proposals/'],
  ['governance_approvals', 'refs/gatos/approvals/'],
  ['governance_grants', 'refs/gatos/grants/'],
  ['governance_revocations', 'refs/gatos/revocations/'],
] as const;

/** Proposals, approvals, grants and revocations: the JSON document each commit carries. */
export function governanceRows(source: Source): Record<(typeof GOVERNANCE)[number][0], Row[]> {
  const out = {} as Record<(typeof GOVERNANCE)[number][0], Row[]>;
  for (const [table, prefix] of GOVERNANCE) {
    const rows: Row[] = [];
    for (const { name, oid } of source.refs.list(prefix)) {
      const commit = readCommit(source.objects, oid);
      const dir = findTreeEntry(source.objects.read(commit.tree).body, 'governance');
      const doc = dir ? parseTree(source.objects.read(dir.oid).body).find((e) => e.name.endsWith('.json')) : undefined;
      const payload = doc ? parseJson(Buffer.from(source.objects.read(doc.oid).body).toString('utf8')) : null;
      const key = name.slice(prefix.length);
      rows.push({
        id: `blake3:${key.replace('/', ':')}`,
        proposal_id:
          typeof (payload as { proposal_id?: unknown } | null)?.proposal_id === 'string'
            ? ((payload as { proposal_id: string }).proposal_id as string)
            : `blake3:${key.split('/')[0]}`,
        payload: jsonCell(payload),
        commit_id: oid,
        ts: commit.committer.timestamp,
        created_ts: commit.committer.timestamp,
        updated_ts: commit.committer.timestamp,
      });
    }
    out[table] = rows;
  }
  return out;
}
