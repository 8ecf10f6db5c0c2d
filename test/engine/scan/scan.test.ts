import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { hasCode } from '../../../engine/errors.js';
import { openRepository, type Repository } from '../../../engine/git/repository.js';
import { startFrontier } from '../../../engine/git/walk.js';
import { scanRange, scanRangeEncoded } from '../../../engine/scan/scan-range.js';
import { decodeRows, scanRefs } from '../../../engine/scan/scan-refs.js';
import { ComputePool } from '../../../engine/scheduler/pool.js';
import { generateFixture } from '../../../fixtures/generate.js';
import { fixtureEnvelope } from '../../../fixtures/journal-chain.js';
import { git, scratch } from '../../helpers/git.js';

const { dir } = scratch();
let repoDir: string;
let repo: Repository;

before(async () => {
  await blake3Ready();
  repoDir = `${dir()}/repo`;
  await generateFixture({ events: 240, seed: 5, out: repoDir, namespaces: 2, actors: 2, threads: 2 });
  repo = openRepository(repoDir);
});
after(() => repo.close());

describe('scanRange', () => {
  test('rows match what git reports for each commit, newest first', () => {
    const [ref] = repo.refs.list('refs/gatos/journal/');
    assert.ok(ref);
    const { rows, frontier } = scanRange(repo.objects, ref.name, startFrontier([ref.oid]), 1000);
    assert.deepEqual(frontier, []);
    const log = git(repoDir, ['log', '--format=%H%x00%P%x00%ct%x00%an <%ae>', ref.name]).trim().split('\n');
    assert.equal(rows.length, log.length);
    rows.forEach((row, i) => {
      const [commit, parents, ts, author] = (log[i] as string).split('\0');
      assert.equal(row.commit, commit);
      assert.equal(row.parents.join(' '), parents);
      assert.equal(String(row.ts), ts);
      assert.equal(row.author, author);
      assert.equal(row.ref, ref.name);
      assert.equal(row.envelopePath, 'event/envelope.cbor');
      assert.equal(row.trailers[0]?.key, 'Event-CID');
    });
  });

  test('the decoded envelope is the one the fixture wrote', () => {
    const refs = repo.refs.list('refs/gatos/journal/');
    const ref = refs[1];
    assert.ok(ref);
    const { rows } = scanRange(repo.objects, ref.name, startFrontier([ref.oid]), 1);
    const envelope = rows[0]?.envelope as { payload: { seq: number }; actor: string };
    // The tip is the ref's last event; rebuild it from the fixture's generator to compare.
    const expected = fixtureEnvelope({ seed: 5, refIndex: 1, actor: envelope.actor, baseTime: 1_700_000_000 }, envelope.payload.seq);
    assert.deepEqual(envelope, expected);
  });

  test('an envelope that does not decode is corrupt_object naming its commit and path', () => {
    // Written with stock git into a repository of its own: a journal commit whose envelope is not CBOR.
    const other = `${dir()}/bad`;
    git(dir(), ['init', '-q', '--bare', other]);
    const blob = git(other, ['hash-object', '-w', '--stdin'], Buffer.from([0xff, 0x00, 0x67])).trim();
    const sub = git(other, ['mktree'], `100644 blob ${blob}\tenvelope.cbor\n`).trim();
    const root = git(other, ['mktree'], `040000 tree ${sub}\tevent\n`).trim();
    const commit = git(other, ['commit-tree', root, '-m', 'bad envelope']).trim();
    const bad = openRepository(other);
    try {
      assert.throws(
        () => scanRange(bad.objects, 'refs/gatos/journal/ns/user/x', startFrontier([commit]), 10),
        (err: unknown) =>
          hasCode(err, 'corrupt_object') &&
          (err as Error).message === `event/envelope.cbor of commit ${commit}: envelope is not valid dag-cbor`,
      );
    } finally {
      bad.close();
    }
  });

  test('a commit whose event/ holds no envelope falls back to message/envelope.json', () => {
    // The root tree is looked up again after the event/ subtree was read (reads are transient).
    const other = `${dir()}/fallback`;
    git(dir(), ['init', '-q', '--bare', other]);
    const note = git(other, ['hash-object', '-w', '--stdin'], 'not an envelope\n').trim();
    const envelope = git(other, ['hash-object', '-w', '--stdin'], '{"ns":"x","type":"t","payload":{"n":1}}').trim();
    const eventDir = git(other, ['mktree'], `100644 blob ${note}\tREADME\n`).trim();
    const messageDir = git(other, ['mktree'], `100644 blob ${envelope}\tenvelope.json\n`).trim();
    const root = git(other, ['mktree'], `040000 tree ${eventDir}\tevent\n040000 tree ${messageDir}\tmessage\n`).trim();
    const commit = git(other, ['commit-tree', root, '-m', 'message commit']).trim();
    git(other, ['repack', '-adq']);
    const packed = openRepository(other);
    try {
      const { rows } = scanRange(packed.objects, 'refs/gatos/messages/x/head', startFrontier([commit]), 10);
      assert.equal(rows[0]?.envelopePath, 'message/envelope.json');
      assert.deepEqual(rows[0]?.envelope, { ns: 'x', type: 't', payload: { n: 1 } });
    } finally {
      packed.close();
    }
  });

  test('the encoded form carries the same rows, batch by batch', () => {
    const [ref] = repo.refs.list('refs/gatos/journal/');
    assert.ok(ref);
    const whole = scanRange(repo.objects, ref.name, startFrontier([ref.oid]), 1000).rows;
    let frontier = startFrontier([ref.oid]);
    const pieces: unknown[] = [];
    while (frontier.length > 0) {
      const step = scanRangeEncoded(repo.objects, ref.name, frontier, 7);
      const batch = JSON.parse(new TextDecoder().decode(step.rows)) as unknown[];
      assert.equal(batch.length, step.count);
      pieces.push(...batch);
      frontier = step.frontier;
    }
    assert.deepEqual(pieces, JSON.parse(JSON.stringify(whole)));
  });
});

describe('scanRefs over the pool', () => {
  test('every commit of every ref arrives once; since= excludes a window', async () => {
    const pool = new ComputePool({ threads: 2, maxInFlight: 2 });
    try {
      const refs = repo.refs.list('refs/gatos/journal/');
      const seen = new Set<string>();
      for await (const batch of scanRefs(pool, repo.gitDir, refs, { batchSize: 13 })) {
        for (const row of decodeRows(batch)) {
          assert.ok(!seen.has(row.commit), `duplicate ${row.commit}`);
          seen.add(row.commit);
        }
      }
      assert.equal(seen.size, 240);
      const ref = refs[0];
      assert.ok(ref);
      const since = git(repoDir, ['rev-parse', `${ref.name}~10`]).trim();
      let count = 0;
      for await (const batch of scanRefs(pool, repo.gitDir, [ref], { since: new Map([[ref.name, since]]) })) count += batch.count;
      assert.equal(count, 10);
    } finally {
      await pool.close();
    }
  });
});
