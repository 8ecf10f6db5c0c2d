/**
 * TTL pruning. A segment goes when its newest message is older than the retention (default
 * 30 days) and every consumer checkpoint of the topic is at or past that message; the segment
 * holding the head always stays. Before deleting, one summary commit per prune run is written at
 * `refs/gatos/audit/message-plane/<ulid>` (segments, ULID range, counts, bytes, the Merkle root of
 * the pruned content ids, the gating checkpoint); the summary and the ref deletions are one
 * transaction. Because each segment is its own chain (decision 0006), the deleted segments
 * become unreachable and `git gc` reclaims them.
 */
import { canonicalize } from '../codec/canonical-json.js';
import { merkleRoot } from '../codec/merkle.js';
import { createUlidFactory, ulidTime } from '../codec/ulid.js';
import { readCommit, serializeCommit, serializeTree } from '../git/object-codec.js';
import type { Oid } from '../git/ports.js';
import { parseTrailers, trailerValue, withTrailers } from '../git/trailers.js';
import { emit, type PruneFact, pruneChannel } from './diagnostics.js';
import { type Bus, readMeta } from './publish.js';
import { assertTopic, CONSUMERS_PREFIX, headRef, listSegments } from './topics.js';

export interface PrunedSegment {
  ref: string;
  first_ulid: string;
  last_ulid: string;
  message_count: number;
  approximate_bytes: number;
}

export interface PruneResult {
  topic: string;
  pruned: PrunedSegment[];
  skipped: Array<{ ref: string; reason: 'head' | 'young' | 'checkpoint_lag' }>;
  gating_checkpoint_ulid: string | null;
  summary_ref: string | null;
  merkle_root: string | null;
}

const DAY = 24 * 3600 * 1000;

/** The segment's content ids, oldest first. */
function segmentContentIds(bus: Bus, tip: Oid): string[] {
  const ids: string[] = [];
  let cursor: Oid | undefined = tip;
  while (cursor) {
    const commit = readCommit(bus.objects, cursor);
    ids.push(trailerValue(parseTrailers(commit.message), 'Content-Id') ?? '');
    cursor = commit.parents[0];
  }
  return ids.reverse();
}

export function prune(bus: Bus, topic: string, options: { retentionMs?: number; dryRun?: boolean } = {}): PruneResult {
  assertTopic(topic);
  const retention = options.retentionMs ?? 30 * DAY;
  const now = bus.clock();
  const head = bus.refs.resolve(headRef(topic));
  const checkpoints = bus.refs
    .list(CONSUMERS_PREFIX)
    .filter(({ name }) => name.slice(CONSUMERS_PREFIX.length).split('/').slice(1).join('/') === topic)
    .map(({ oid }) => (JSON.parse(Buffer.from(bus.objects.read(oid).body).toString('utf8')) as { ulid: string }).ulid);
  // biome-ignore lint/complexity/useMathMinMax: ULIDs are strings, ordered as strings
  const gating = checkpoints.length > 0 ? checkpoints.reduce((a, b) => (a < b ? a : b)) : null;
  const result: PruneResult = { topic, pruned: [], skipped: [], gating_checkpoint_ulid: gating, summary_ref: null, merkle_root: null };
  const doomed: Array<{ ref: string; tip: Oid; ids: string[] }> = [];
  for (const segment of listSegments(bus.refs, topic)) {
    const meta = readMeta(bus.objects, segment.tip);
    const lastUlid = trailerValue(parseTrailers(readCommit(bus.objects, segment.tip).message), 'Event-Id')?.replace(/^ulid:/, '') ?? '';
    if (segment.tip === head) result.skipped.push({ ref: segment.ref, reason: 'head' });
    else if (now - ulidTime(lastUlid) < retention) result.skipped.push({ ref: segment.ref, reason: 'young' });
    else if (gating !== null && gating < lastUlid) result.skipped.push({ ref: segment.ref, reason: 'checkpoint_lag' });
    else {
      result.pruned.push({
        ref: segment.ref,
        first_ulid: segment.ulid,
        last_ulid: lastUlid,
        message_count: meta?.message_count ?? 0,
        approximate_bytes: meta?.approximate_bytes ?? 0,
      });
      doomed.push({ ref: segment.ref, tip: segment.tip, ids: segmentContentIds(bus, segment.tip) });
    }
  }
  if (doomed.length === 0) {
    if (!options.dryRun) emit<PruneFact>(pruneChannel, result);
    return result;
  }
  const digests = doomed.flatMap((d) => d.ids).map((id) => Buffer.from(id.replace(/^blake3:/, ''), 'hex'));
  result.merkle_root = `blake3:${Buffer.from(merkleRoot(digests)).toString('hex')}`;
  const summaryUlid = createUlidFactory(bus.clock)();
  result.summary_ref = `refs/gatos/audit/message-plane/${summaryUlid}`;
  if (options.dryRun) return result;
  const summary = {
    topic,
    segments: result.pruned.map((p) => p.ref),
    first_ulid: result.pruned[0]?.first_ulid,
    last_ulid: result.pruned[result.pruned.length - 1]?.last_ulid,
    message_count: result.pruned.reduce((sum, p) => sum + p.message_count, 0),
    approximate_bytes: result.pruned.reduce((sum, p) => sum + p.approximate_bytes, 0),
    merkle_root: result.merkle_root,
    gating_checkpoint_ulid: gating,
  };
  const blob = bus.objects.write('blob', Buffer.from(`${canonicalize(summary)}\n`));
  const tree = bus.objects.write('tree', serializeTree([{ mode: '100644', name: 'summary.json', oid: blob }]));
  const who = { name: 'gatos-message-plane', email: 'message-plane@gatos.local', timestamp: Math.floor(now / 1000), timezone: '+0000' };
  const message = withTrailers(`message-plane: prune ${doomed.length} segment(s) of ${topic}`, [
    { key: 'Merkle-Root', value: result.merkle_root },
  ]);
  const commit = bus.objects.write('commit', serializeCommit({ tree, parents: [], author: who, committer: who, message }));
  const transaction = bus.refs.transaction().create(result.summary_ref, commit);
  for (const { ref, tip } of doomed) transaction.delete(ref, tip);
  transaction.commit();
  emit<PruneFact>(pruneChannel, result);
  return result;
}
