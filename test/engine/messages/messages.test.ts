import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3Ready, contentId } from '../../../engine/codec/blake3.js';
import { canonicalize } from '../../../engine/codec/canonical-json.js';
import { merkleRoot } from '../../../engine/codec/merkle.js';
import { GatosError } from '../../../engine/errors.js';
import { findTreeEntry, parseCommit, serializeCommit, serializeTree } from '../../../engine/git/object-codec.js';
import { openRepository } from '../../../engine/git/repository.js';
import { readCheckpoint, writeCheckpoint } from '../../../engine/messages/checkpoint.js';
import { type PublishFact, publishChannel } from '../../../engine/messages/diagnostics.js';
import { checkMessageEnvelope, messageBytes } from '../../../engine/messages/envelope.js';
import { prune } from '../../../engine/messages/prune.js';
import { type Bus, publish, type Receipt, readMeta } from '../../../engine/messages/publish.js';
import { type ReadMessage, readMessages } from '../../../engine/messages/read.js';
import { assertTopic, listSegments } from '../../../engine/messages/topics.js';
import { ComputePool } from '../../../engine/scheduler/pool.js';
import { fsckStrict, git, gitBytes as gitBytesRaw, scratch } from '../../helpers/git.js';

const gitBytesOf = (dir: string, spec: string): Buffer => gitBytesRaw(dir, ['show', spec]);

const { repo: newRepo } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;
const EXAMPLE = new URL('../../../../../shared/reference/examples/v1/message-plane/event_envelope_min.json', import.meta.url);

function setup(start = Date.parse('2025-11-24T10:00:00Z')): { dir: string; bus: Bus; advance: (ms: number) => void } {
  const dir = newRepo();
  const repo = openRepository(dir);
  let now = start;
  return {
    dir,
    bus: { objects: repo.objects, refs: repo.refs, clock: () => now },
    advance: (ms) => {
      now += ms;
    },
  };
}

const draft = (i: number) => ({ ns: 'ci', type: 'build.finished', payload: { i } });
/** ULIDs in the setup hour, increasing with `i`. */
const ulidAt = (i: number) =>
  `01KAT0000000000000000${Array.from({ length: 5 }, (_, k) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[(i >> (5 * (4 - k))) & 31]).join('')}`;

before(() => blake3Ready());

describe('message envelopes', () => {
  test('the reference example canonicalizes to the known content id', () => {
    const envelope = checkMessageEnvelope(JSON.parse(readFileSync(EXAMPLE, 'utf8')));
    const { bytes, contentId } = messageBytes(envelope);
    assert.equal(bytes.length, 307);
    assert.equal(contentId, 'blake3:c4e8c3074cfced706269ce775585bf70a4840a427d49e0b266ce71c23ea31c03');
    assert.equal(Buffer.from(bytes).toString(), canonicalize(envelope));
  });

  test('closed schema: unknown fields, bad refs and floats are invalid_envelope', () => {
    const base = { ulid: '01HZY74CE0R9X5ZG9S7B5MQG9S', ns: 'x', type: 't', payload: {} };
    for (const bad of [
      { ...base, extra: 1 },
      { ...base, refs: { state: 'nope' } },
      { ...base, payload: { f: 1.5 } },
      { ...base, payload: [] },
    ]) {
      assert.throws(() => checkMessageEnvelope(bad), isCode('invalid_envelope'));
    }
  });

  test('topic names', () => {
    for (const ok of ['jobs.pending', 'team/ci', 'gatos.governance.proposal.created']) assert.equal(assertTopic(ok), ok);
    for (const bad of ['', 'a/head', 'a/2024', 'a..b', '.a', 'a/', 'a b', 'x.lock'])
      assert.throws(() => assertTopic(bad), isCode('invalid_topic'), bad);
  });
});

describe('publish and read', () => {
  test('messages land in commits git can read, with trailers, in one chain per segment', async () => {
    const { dir, bus } = setup();
    const receipts = await publish(bus, 'ci', [draft(1), draft(2), draft(3)]);
    assert.equal(receipts.length, 3);
    assert.ok(
      receipts[0]?.ulid &&
        receipts[0].ulid < (receipts[1]?.ulid as string) &&
        (receipts[1]?.ulid as string) < (receipts[2]?.ulid as string),
    );
    assert.equal(git(dir, ['rev-parse', 'refs/gatos/messages/ci/head']).trim(), receipts[2]?.commit);
    const segment = `refs/gatos/messages/ci/2025/11/24/10/${receipts[0]?.ulid}`;
    assert.equal(git(dir, ['rev-parse', segment]).trim(), receipts[2]?.commit);
    assert.equal(
      git(dir, ['log', '-1', '--format=%(trailers:key=Content-Id,valueonly)', receipts[1]?.commit as string]).trim(),
      receipts[1]?.content_id,
    );
    assert.match(git(dir, ['show', `${receipts[0]?.commit}:message/envelope.json`]), /"type":"build.finished"/);
    // Only message/ at the root (ADR-0005); the segment facts ride in trailers.
    assert.equal(git(dir, ['ls-tree', '--name-only', receipts[1]?.commit as string]), 'message\n');
    assert.equal(git(dir, ['log', '-1', '--format=%(trailers:key=Segment-Count,valueonly)', receipts[1]?.commit as string]).trim(), '2');
    fsckStrict(dir);
    const page = readMessages(bus, 'ci');
    assert.deepEqual(
      page.messages.map((m) => m.ulid),
      receipts.map((r) => r.ulid),
    );
    assert.equal(page.next_since, receipts[2]?.ulid);
    assert.equal(JSON.parse(Buffer.from(page.messages[0]?.canonical_json as string, 'base64').toString()).payload.i, 1);
  });

  test('concurrent publishes on one topic share commits (group commit); each caller gets its own receipts', async () => {
    const { dir, bus } = setup();
    let transactions = 0;
    const count = (fact: unknown) => {
      if ((fact as PublishFact).result === 'ok') transactions++;
    };
    publishChannel.subscribe(count);
    let receipts: Receipt[][];
    try {
      receipts = await Promise.all(Array.from({ length: 200 }, (_, i) => publish(bus, 'ci', [draft(i)])));
    } finally {
      publishChannel.unsubscribe(count);
    }
    assert.ok(transactions < 20, `${transactions} ref transactions for 200 concurrent publishes`);
    const page = readMessages(bus, 'ci', { limit: 512 });
    assert.equal(page.messages.length, 200);
    const byUlid = new Map(page.messages.map((m) => [m.ulid, JSON.parse(Buffer.from(m.canonical_json, 'base64').toString()).payload.i]));
    for (const [i, [receipt]] of receipts.entries())
      assert.equal(byUlid.get(receipt?.ulid as string), i, `caller ${i} got its own receipt`);
    fsckStrict(dir);
  });

  test("one caller's bad envelope in a group fails only that caller", async () => {
    const { bus } = setup();
    const [first] = await publish(bus, 'ci', [draft(0)]);
    const settled = await Promise.allSettled([
      publish(bus, 'ci', [draft(1)]),
      publish(bus, 'ci', [{ ...draft(2), ulid: '01KAT00000000000000000000A' }]), // older than the head
      publish(bus, 'ci', [draft(3)]),
    ]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.ok(isCode('ulid_not_monotonic')((settled[1] as PromiseRejectedResult).reason));
    const ulids = readMessages(bus, 'ci').messages.map((m) => m.ulid);
    assert.equal(ulids.length, 3);
    assert.equal(ulids[0], first?.ulid);
  });

  test('a batch compressed on the worker pool writes the same commits and a pack git accepts', async () => {
    const drafts = Array.from({ length: 1500 }, (_, i) => ({ ...draft(i), ulid: ulidAt(i) }));
    const inThread = setup();
    const onPool = setup();
    const pool = new ComputePool({ threads: 2 });
    try {
      const plain = await publish(inThread.bus, 'ci', drafts);
      const pooled = await publish(onPool.bus, 'ci', drafts, { pool });
      assert.deepEqual(pooled, plain);
    } finally {
      await pool.close();
    }
    assert.equal(git(onPool.dir, ['rev-list', '--count', 'refs/gatos/messages/ci/head']).trim(), '1500');
    fsckStrict(onPool.dir);
  });

  test('rotation by count and by hour; each segment starts a new chain; reads page across segments', async () => {
    const { dir, bus, advance } = setup();
    const first = await publish(
      bus,
      'ci',
      Array.from({ length: 7 }, (_, i) => draft(i)),
      { maxMessages: 3 },
    );
    assert.deepEqual(
      first.map((r) => r.rotated ?? '-'),
      ['first', '-', '-', 'max_messages', '-', '-', 'max_messages'],
    );
    advance(3600 * 1000);
    const later = await publish(bus, 'ci', [draft(7)], { maxMessages: 3 });
    assert.equal(later[0]?.rotated, 'hour');
    const segments = listSegments(bus.refs, 'ci');
    assert.equal(segments.length, 4);
    for (const segment of segments) {
      const rootOf = git(dir, ['rev-list', '--max-parents=0', segment.ref]).trim().split('\n');
      assert.equal(rootOf.length, 1, 'one chain per segment');
      assert.equal(readMeta(bus.objects, segment.tip)?.segment_ulid, segment.ulid);
    }
    assert.equal(parseCommit(bus.objects.read(later[0]?.commit as string).body).parents.length, 0);
    // Page through everything, 2 at a time, in order and without repeats.
    const all = [...first, ...later].map((r) => r.ulid);
    assert.deepEqual(
      readAll(bus, 'ci', 2).map((m) => m.ulid),
      all,
    );
    fsckStrict(dir);
  });

  test('attachments are stored beside the envelope and referenced by content id', async () => {
    const { dir, bus } = setup();
    const report = Buffer.from('build log\nline 2\n');
    const [receipt] = await publish(bus, 'ci', [{ ...draft(1), attachments: { 'build.log': report } }]);
    assert.deepEqual(gitBytesOf(dir, `${receipt?.commit}:message/attachments/build.log`), report);
    const envelope = JSON.parse(git(dir, ['show', `${receipt?.commit}:message/envelope.json`])) as { refs: Record<string, string> };
    assert.equal(envelope.refs['attachment:build.log'], contentId(report));
    await assert.rejects(publish(bus, 'ci', [{ ...draft(2), attachments: { '../x': report } }]), isCode('invalid_envelope'));
    fsckStrict(dir);
  });

  test('rotation by size: a message that would pass maxBytes opens a segment', async () => {
    const { bus } = setup();
    const big = { ns: 'ci', type: 'blob', payload: { data: 'x'.repeat(300) } };
    const receipts = await publish(bus, 'sized', [big, big, big, big], { maxBytes: 800 });
    assert.deepEqual(
      receipts.map((r) => r.rotated ?? '-'),
      ['first', '-', 'max_bytes', '-'],
    );
  });

  test('a segment written with meta/meta.json (before segment trailers) is continued', async () => {
    const { dir, bus } = setup();
    const [first] = await publish(bus, 'old', [draft(0)]);
    // Rewrite the head commit the way earlier versions stored segment state: a meta/ tree, no Segment-* trailers.
    const commit = parseCommit(bus.objects.read(first?.commit as string).body);
    const meta = readMeta(bus.objects, first?.commit as string);
    const metaBlob = bus.objects.write('blob', Buffer.from(`${canonicalize(meta)}\n`));
    const metaTree = bus.objects.write('tree', serializeTree([{ mode: '100644', name: 'meta.json', oid: metaBlob }]));
    const message = findTreeEntry(bus.objects.read(commit.tree).body, 'message');
    const root = bus.objects.write(
      'tree',
      serializeTree([
        { mode: '40000', name: 'message', oid: message?.oid as string },
        { mode: '40000', name: 'meta', oid: metaTree },
      ]),
    );
    const legacy = bus.objects.write(
      'commit',
      serializeCommit({ ...commit, tree: root, message: commit.message.replace(/^Segment-.*\n/gm, '') }),
    );
    bus.refs
      .transaction()
      .update(first?.segment as string, legacy, first?.commit as string)
      .update('refs/gatos/messages/old/head', legacy, first?.commit as string)
      .commit();
    assert.deepEqual(readMeta(bus.objects, legacy), meta);
    const [second] = await publish(bus, 'old', [draft(1)]);
    assert.equal(second?.segment, first?.segment);
    assert.equal(readMeta(bus.objects, second?.commit as string)?.message_count, 2);
    fsckStrict(dir);
  });

  test('ULIDs are strictly increasing per topic', async () => {
    const { bus } = setup();
    await publish(bus, 'ci', [{ ...draft(1), ulid: '01KB0000000000000000000005' }]);
    await assert.rejects(publish(bus, 'ci', [{ ...draft(2), ulid: '01KB0000000000000000000004' }]), isCode('ulid_not_monotonic'));
    // Generated ULIDs follow the head even when the clock is behind it.
    const [next] = await publish(bus, 'ci', [draft(3)]);
    assert.ok((next?.ulid as string) > '01KB0000000000000000000005');
  });

  test('read errors per the messages.read contract', async () => {
    const { bus } = setup();
    assert.throws(() => readMessages(bus, 'nope'), isCode('topic_not_found'));
    await publish(bus, 'ci', [draft(1)]);
    assert.throws(() => readMessages(bus, 'ci', { since: 'bad' }), isCode('invalid_ulid'));
    assert.throws(() => readMessages(bus, 'ci', { limit: 0 }), isCode('limit_out_of_range'));
    assert.equal(readMessages(bus, 'ci', { limit: 10_000 }).messages.length, 1);
    assert.deepEqual(readMessages(bus, 'ci', { since: '7ZZZZZZZZZZZZZZZZZZZZZZZZZ' }), {
      messages: [],
      next_since: null,
      checkpoint_hint: null,
    });
  });

  test('a topic nesting with another is refused', async () => {
    const { bus } = setup();
    await publish(bus, 'team/ci', [draft(1)]);
    await assert.rejects(publish(bus, 'team', [draft(2)]), isCode('invalid_topic'));
    await assert.rejects(publish(bus, 'team/ci/x', [draft(2)]), isCode('invalid_topic'));
  });
});

describe('checkpoints', () => {
  test('move forward by CAS, never back; same ULID is a no-op', async () => {
    const { dir, bus } = setup();
    const receipts = await publish(bus, 'ci', [draft(1), draft(2)]);
    const [a, b] = receipts as unknown as [{ ulid: string; commit: string }, { ulid: string; commit: string }];
    assert.deepEqual(writeCheckpoint(bus, 'workers', 'ci', { ulid: b.ulid, commit: b.commit }), {
      ref: 'refs/gatos/consumers/workers/ci',
      moved: true,
    });
    assert.equal(writeCheckpoint(bus, 'workers', 'ci', { ulid: b.ulid }).moved, false);
    assert.throws(() => writeCheckpoint(bus, 'workers', 'ci', { ulid: a.ulid }), isCode('checkpoint_backwards'));
    assert.deepEqual(readCheckpoint(bus, 'workers', 'ci'), { ulid: b.ulid, commit: b.commit });
    assert.equal(git(dir, ['cat-file', '-p', 'refs/gatos/consumers/workers/ci']), `{"commit":"${b.commit}","ulid":"${b.ulid}"}`);
    fsckStrict(dir);
  });
});

describe('prune', () => {
  test('old segments behind every checkpoint go, with one audit summary; gc reclaims them', async () => {
    const { dir, bus, advance } = setup();
    const old = await publish(
      bus,
      'ci',
      Array.from({ length: 6 }, (_, i) => draft(i)),
      { maxMessages: 3 },
    );
    advance(40 * 24 * 3600 * 1000);
    const fresh = await publish(bus, 'ci', [draft(6)], { maxMessages: 3 });
    // A checkpoint inside the second old segment holds that segment (and lets the first go).
    writeCheckpoint(bus, 'workers', 'ci', { ulid: old[3]?.ulid as string });
    const dry = prune(bus, 'ci', { dryRun: true });
    assert.equal(dry.pruned.length, 1);
    assert.equal(listSegments(bus.refs, 'ci').length, 3, 'dry run changes nothing');
    const result = prune(bus, 'ci');
    assert.deepEqual(
      result.pruned.map((p) => [p.first_ulid, p.last_ulid, p.message_count]),
      [[old[0]?.ulid, old[2]?.ulid, 3]],
    );
    assert.deepEqual(
      result.skipped.map((s) => s.reason),
      ['checkpoint_lag', 'head'],
    );
    const summary = JSON.parse(git(dir, ['show', `${result.summary_ref}:summary.json`])) as {
      message_count: number;
      merkle_root: string;
      gating_checkpoint_ulid: string;
    };
    assert.equal(summary.message_count, 3);
    assert.equal(summary.gating_checkpoint_ulid, old[3]?.ulid);
    assert.equal(summary.merkle_root, result.merkle_root);
    // The pruned messages are gone from reads, and unreachable for git.
    assert.deepEqual(
      readMessages(bus, 'ci').messages.map((m) => m.ulid),
      [...old.slice(3), ...fresh].map((r) => r.ulid),
    );
    git(dir, ['reflog', 'expire', '--expire=now', '--all']);
    git(dir, ['gc', '--prune=now', '-q']);
    assert.throws(() => git(dir, ['cat-file', '-e', old[0]?.commit as string]));
    fsckStrict(dir);
  });

  test('merkle roots: promotion of the odd node', () => {
    const leaves = [1, 2, 3].map((n) => Buffer.alloc(32, n));
    const left = merkleRoot(leaves.slice(0, 2));
    assert.deepEqual(Buffer.from(merkleRoot(leaves)), Buffer.from(merkleRoot([left, leaves[2] as Buffer])));
  });
});

describe('racing publishers', () => {
  test('eight processes publishing to one topic lose nothing and keep ULIDs increasing', async () => {
    const PER_PROCESS = 250;
    const { dir, bus } = setup(Date.now());
    const helper = fileURLToPath(new URL('./helpers/publish-loop.js', import.meta.url));
    const run = (tag: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [helper, join(dir, '.git'), 'race', String(PER_PROCESS), tag]);
        let err = '';
        child.stderr.on('data', (chunk) => {
          err += chunk;
        });
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(err))));
      });
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(run));
    const ulids = readAll(bus, 'race').map((m) => m.ulid);
    assert.equal(ulids.length, 8 * PER_PROCESS);
    assert.deepEqual(ulids, [...ulids].sort());
    assert.equal(new Set(ulids).size, 8 * PER_PROCESS);
    const segments = listSegments(bus.refs, 'race');
    assert.equal(
      segments.reduce((n, s) => n + (readMeta(bus.objects, s.tip)?.message_count ?? 0), 0),
      8 * PER_PROCESS,
    );
    fsckStrict(dir);
  });

  test('a stock git update-ref racing on the head loses nothing', async () => {
    const { dir, bus } = setup(Date.now());
    await publish(bus, 'raced', [draft(0)]);
    const helper = fileURLToPath(new URL('./helpers/publish-loop.js', import.meta.url));
    const publisher = () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [helper, join(dir, '.git'), 'raced', '60', 'p']);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`publisher exited ${code}`))));
      });
    // git takes the same lock and re-points the head at itself, over and over.
    const racer = spawn('sh', [
      '-c',
      `cd ${JSON.stringify(dir)}; while [ ! -f stop ]; do h=$(git rev-parse refs/gatos/messages/raced/head); git update-ref refs/gatos/messages/raced/head $h $h 2>/dev/null; done`,
    ]);
    await Promise.all([publisher(), publisher()]);
    writeFileSync(join(dir, 'stop'), '');
    await new Promise((resolve) => racer.on('close', resolve));
    assert.equal(readAll(bus, 'raced').length, 121);
    fsckStrict(dir);
  });

  test('publishers killed with SIGKILL leave no half-visible message', async () => {
    const { dir, bus } = setup(Date.now());
    const helper = fileURLToPath(new URL('./helpers/publish-loop.js', import.meta.url));
    for (let round = 0; round < 3; round++) {
      const children = [0, 1, 2].map(() => spawn(process.execPath, [helper, join(dir, '.git'), 'crash', '100000', `r${round}`]));
      await new Promise((resolve) => setTimeout(resolve, 400 + round * 150));
      await Promise.all(
        children.map(
          (child) =>
            new Promise((resolve) => {
              child.on('close', resolve);
              child.kill('SIGKILL');
            }),
        ),
      );
      // A killed writer can leave its lock behind, as git can; clearing stale locks is an
      // operator's (or doctor's) job. Nothing else may be wrong.
      git(dir, ['fsck', '--strict', '--no-dangling']);
      rmLocks(join(dir, '.git', 'refs'));
    }
    // Every ref points at a complete message: a full read decodes every envelope.
    const messages = readAll(bus, 'crash');
    for (const message of messages) JSON.parse(Buffer.from(message.canonical_json, 'base64').toString('utf8'));
    const count = messages.length;
    assert.ok(count > 0);
    const segmentCount = listSegments(bus.refs, 'crash').reduce((n, s) => n + (readMeta(bus.objects, s.tip)?.message_count ?? 0), 0);
    assert.equal(segmentCount, count, 'segment metadata agrees with what is readable');
  });
});

/** Every message of a topic, paging with `limit` per page through `next_since`. */
function readAll(bus: Bus, topic: string, limit = 512): ReadMessage[] {
  const out: ReadMessage[] = [];
  let since: string | undefined;
  for (;;) {
    const page = readMessages(bus, topic, { limit, ...(since ? { since } : {}) });
    if (page.messages.length === 0) return out;
    out.push(...page.messages);
    since = page.next_since as string;
  }
}

/** Removes leftover `*.lock` files under a directory. */
function rmLocks(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) rmLocks(path);
    else if (entry.name.endsWith('.lock')) rmSync(path);
  }
}
