import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalText, type Literal, type Predicate } from '../../dsl/ast.js';
import { compileFilter } from '../../dsl/evaluate.js';
import { parseFilter } from '../../dsl/parse.js';
import { planJournals, planSegments } from '../../dsl/plan.js';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { MemoryObjectStore } from '../../engine/git/memory-object-store.js';
import { serializeCommit, serializeTree } from '../../engine/git/object-codec.js';
import type { Oid } from '../../engine/git/ports.js';
import { openRepository } from '../../engine/git/repository.js';
import { publish } from '../../engine/messages/publish.js';
import { listTopics } from '../../engine/messages/topics.js';
import { ComputePool } from '../../engine/scheduler/pool.js';
import { runExport } from '../../exporter/export.js';
import { journalRefs, journalRows, messageOrder, messageTasks, segmentRows, TASK_MESSAGES, topicSegments } from '../../exporter/extract.js';
import { type Row, tableDef } from '../../exporter/tables.js';
import { generateFixture } from '../../fixtures/generate.js';
import { populatePlanes } from '../../fixtures/planes.js';
import { git, scratch } from '../helpers/git.js';
import { recordingReads } from '../helpers/objects.js';

const { dir: newDir, repo: newRepo } = scratch();
let gitDir = '';
let root = '';

before(async () => {
  await blake3Ready();
  root = newDir();
  gitDir = (await generateFixture({ events: 600, seed: 5, out: root, namespaces: 4, actors: 3 })).gitDir;
});

const events = tableDef('events');

function everyEvent() {
  const repo = openRepository(root);
  const heads = journalRefs(repo.refs);
  const rows: Row[] = [];
  journalRows(repo, heads, { since: new Map(), wanted: { commits: new Set(), events: new Set(heads.map((h) => h.name)) } }, (_, row) =>
    rows.push(row),
  );
  return rows;
}

const literal = (column: string): fc.Arbitrary<Literal> =>
  column === 'payload.n'
    ? fc.integer({ min: -5, max: 50 }).map((n) => ({ type: 'number', value: String(n) }))
    : column === 'ts'
      ? fc.integer({ min: 1_699_999_000, max: 1_700_100_000 }).map((n) => ({ type: 'number', value: String(n) }))
      : fc
          .constantFrom('ledger', 'ops', 'billing', 'infra', 'agent:bot-00', 'user:alice-01', 'x')
          .map((value) => ({ type: 'string', value }));

/** Random predicates over `columns` (comparisons, in, and, or, not), literals drawn by `literal`. */
function predicates(columns: readonly string[], literal: (column: string) => fc.Arbitrary<Literal>): fc.Arbitrary<Predicate> {
  const leaf: fc.Arbitrary<Predicate> = fc.constantFrom(...columns).chain((column) =>
    fc.oneof(
      fc.record({
        kind: fc.constant('cmp' as const),
        path: fc.constant(column.split('.')),
        op: fc.constantFrom('=', '!=', '<', '<=', '>', '>=' as const),
        value: literal(column),
      }),
      fc.record({
        kind: fc.constant('in' as const),
        path: fc.constant(column.split('.')),
        values: fc.array(literal(column), { minLength: 1, maxLength: 3 }),
      }),
    ),
  );
  return fc.letrec<{ p: Predicate }>((tie) => ({
    p: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.record({ kind: fc.constant('and' as const), args: fc.array(tie('p'), { minLength: 2, maxLength: 3 }) }),
      fc.record({ kind: fc.constant('or' as const), args: fc.array(tie('p'), { minLength: 2, maxLength: 3 }) }),
      fc.record({ kind: fc.constant('not' as const), arg: tie('p') }),
    ),
  })).p;
}

const predicate = predicates(['ns', 'actor', 'kind', 'ts', 'payload.n'], literal);

describe('pushdown', () => {
  test('property: a filtered export equals the full export filtered afterwards', async () => {
    const full = everyEvent();
    const repo = openRepository(root);
    await fc.assert(
      fc.asyncProperty(predicate, async (p) => {
        const out = `${newDir()}/x.sqlite`;
        const manifest = await runExport(repo, {
          format: 'sqlite',
          out,
          tables: ['events'],
          where: new Map([['events', p]]),
          clock: () => 0,
        });
        const expected = full.filter(compileFilter(p, events)).length;
        assert.equal(manifest.row_counts.events, expected, canonicalText(p));
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  test('journals of pruned namespaces are never read', () => {
    const repo = openRepository(root);
    const pruned = journalRefs(repo.refs).filter((h) => !h.name.startsWith('refs/gatos/journal/ops/'));
    const untouchable = new Set(pruned.flatMap((h) => git(root, ['rev-list', h.name]).trim().split('\n')));
    const reads = new Set<Oid>();
    const watched = recordingReads(repo.objects, reads);
    const p = parseFilter('ns = "ops"');
    const heads = journalRefs(repo.refs);
    const plan = planJournals(heads, 'events', p);
    assert.equal(plan.pruned.length, pruned.length);
    const rows: Row[] = [];
    journalRows(
      { objects: watched, refs: repo.refs },
      heads,
      { since: new Map(), wanted: { commits: new Set(), events: new Set(plan.read.map((h) => h.name)) } },
      (_, row) => rows.push(row),
    );
    assert.ok(rows.length > 0 && rows.every(compileFilter(p, events)));
    assert.equal([...reads].filter((oid) => untouchable.has(oid)).length, 0);
  });

  test('random garbage never crashes the parser: always a typed error or a predicate', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        try {
          parseFilter(text);
        } catch (err) {
          assert.ok(err instanceof GatosError && err.code === 'invalid_filter', `${JSON.stringify(text)} threw ${String(err)}`);
        }
      }),
      { numRuns: 500, seed: 3 },
    );
  });

  test('one pool serves consecutive exports to the same output (each with fresh staging shards)', async () => {
    const repo = openRepository(root);
    const pool = new ComputePool({ threads: 2 });
    const out = `${newDir()}/same.sqlite`;
    try {
      const first = await runExport(repo, { format: 'sqlite', out, clock: () => 0, pool, gitDir, full: true });
      const second = await runExport(repo, { format: 'sqlite', out, clock: () => 0, pool, gitDir, full: true });
      assert.deepEqual(second.row_counts, first.row_counts);
      assert.ok((first.row_counts.events as number) > 0);
    } finally {
      await pool.close();
    }
  });

  test('journals longer than a task and tasks of several journals: the rows of an in-thread export', async () => {
    // Two journals of 2,250 commits: each task starts on both, stops at its commit limit and
    // hands the rest back; the walk resumes where it stopped.
    const dir = newDir();
    const longGitDir = (await generateFixture({ events: 4500, seed: 7, out: dir, namespaces: 1, actors: 2 })).gitDir;
    const repo = openRepository(dir);
    const pool = new ComputePool({ threads: 2 });
    const pooled = await runExport(repo, { format: 'sqlite', out: `${newDir()}/t`, clock: () => 0, pool, gitDir: longGitDir });
    await pool.close();
    const inThread = await runExport(repo, { format: 'sqlite', out: `${newDir()}/t`, clock: () => 0 });
    assert.equal(pooled.row_counts.commits, 4500);
    assert.equal(pooled.files[0]?.blake3, inThread.files[0]?.blake3);
    repo.close();
  });

  test('a clone that borrows every object (git clone --shared) exports the same bytes, on the pool too', async () => {
    const clone = join(newDir(), 'clone.git');
    git(root, ['clone', '-q', '--shared', '--mirror', gitDir, clone]);
    assert.deepEqual(readdirSync(join(clone, 'objects', 'pack')), [], 'every object is borrowed');
    const exported: string[] = [];
    for (const [repoDir, threads] of [
      [root, 1],
      [clone, 1],
      [clone, 2],
    ] as const) {
      const repo = openRepository(repoDir);
      const pool = threads > 1 ? new ComputePool({ threads }) : undefined;
      try {
        const manifest = await runExport(repo, {
          format: 'sqlite',
          out: join(newDir(), 'x.sqlite'),
          clock: () => 0,
          ...(pool ? { pool, gitDir: repo.gitDir } : {}),
        });
        exported.push(manifest.files[0]?.blake3 as string);
      } finally {
        await pool?.close();
        repo.close();
      }
    }
    assert.equal(new Set(exported).size, 1, exported.join(' '));
  });

  test('message segments share a task until it holds enough messages; large ones get their own', () => {
    const segment = (topic: string, count: number) => ({ topic, ref: `refs/gatos/messages/${topic}`, tip: topic.padEnd(40, '0'), count });
    const segments = [segment('a', 3), segment('b', 40), segment('c', 10), segment('d', 1), segment('e', 25), segment('f', 6)];
    const tasks = messageTasks(segments, 20);
    assert.deepEqual(
      tasks.map((task) => task.map((s) => s.topic)),
      [['b'], ['e'], ['c', 'f', 'a', 'd']],
    );
    // A repository's usual few thousand messages are one task: one worker warms up for them.
    assert.equal(messageTasks([segment('x', 3333), segment('y', 3334), segment('z', 12)]).length, 1);
    assert.equal(messageTasks([segment('x', TASK_MESSAGES), segment('y', TASK_MESSAGES)]).length, 2);
    assert.deepEqual(messageTasks([]), []);
  });

  test('1 thread and 2 threads give the same bytes, filters applied in the workers included', async () => {
    // Journals, message topics, state, jobs and governance: every table, both formats.
    const dir = newDir();
    const planesGitDir = (await generateFixture({ events: 400, seed: 6, out: dir, namespaces: 3, actors: 2 })).gitDir;
    await populatePlanes(dir, { seed: 6, messages: 90, jobs: 1 });
    const repo = openRepository(dir);
    const where = new Map([
      ['events', parseFilter('payload.n > 10 or ns = "ops"')],
      ['messages', parseFilter('topic != "alerts"')],
    ]);
    // Parquet tables are written on the pool too, with the columns asked for.
    const columns = new Map([['messages', ['topic', 'kind']]]);
    for (const format of ['sqlite', 'parquet'] as const) {
      const digests: string[] = [];
      for (const threads of [1, 2]) {
        const pool = new ComputePool({ threads });
        const outDir = newDir();
        const manifest = await runExport(repo, { format, out: `${outDir}/t`, clock: () => 0, pool, gitDir: planesGitDir, where, columns });
        await pool.close();
        // No staging file, shard or side table is left behind.
        assert.deepEqual(readdirSync(outDir).sort(), ['t', 't.explorer-root.txt', 't.manifest.json']);
        assert.ok((manifest.row_counts.messages as number) > 0 && (manifest.row_counts.events as number) > 0);
        digests.push(manifest.files.map((f) => f.blake3).join());
      }
      const inThread = await runExport(repo, { format, out: `${newDir()}/t`, clock: () => 0, where, columns });
      assert.equal(digests[0], digests[1], format);
      assert.equal(inThread.files.map((f) => f.blake3).join(), digests[0], format);
    }
    repo.close();
  });
});

describe('message segments by time', () => {
  const HOUR = 3_600_000;
  const START = Date.parse('2025-03-01T00:00:00Z');
  const messages = tableDef('messages');
  let dir = '';
  let now = START;
  /** Publishes `count` messages to `topic` at `at` ms after START (a new hour starts a new segment). */
  let publishAt: (topic: string, at: number, count: number) => Promise<void>;

  before(async () => {
    dir = newRepo();
    const repo = openRepository(dir);
    const bus = { objects: repo.objects, refs: repo.refs, clock: () => now };
    publishAt = async (topic, at, count) => {
      now = START + at;
      await publish(
        bus,
        topic,
        Array.from({ length: count }, (_, i) => ({ ns: 'ops', type: 'tick', payload: { at, i } })),
      );
    };
    // Six hours, two topics: twelve segments of 4-5 messages, each spanning 0-20 minutes.
    for (let hour = 0; hour < 6; hour++) {
      await publishAt('alerts', hour * HOUR, 3);
      await publishAt('deploys', hour * HOUR + 60_000, 4);
      await publishAt('alerts', hour * HOUR + 20 * 60_000, 2);
    }
  });

  const everything = () => {
    const repo = openRepository(dir);
    return topicSegments(repo, listTopics(repo.refs));
  };
  const rowsOf = (segments: ReturnType<typeof everything>) => {
    const repo = openRepository(dir);
    const rows: Row[] = [];
    segmentRows(repo.objects, segments, (row) => rows.push(row));
    return rows;
  };

  test('property: rows of the segments kept, filtered, are the rows of all segments filtered', () => {
    const segments = everything();
    assert.equal(segments.length, 12);
    const all = rowsOf(segments);
    const ulids = all.map((row) => row.ulid as string);
    const at = (ms: number) => new Date(START + ms).toISOString().replace('.000Z', 'Z');
    const literal = (column: string): fc.Arbitrary<Literal> =>
      column === 'ulid'
        ? fc.oneof(fc.constantFrom(...ulids), fc.constantFrom('0', '01J', 'Z')).map((value) => ({ type: 'string', value }))
        : column === 'topic'
          ? fc.constantFrom('alerts', 'deploys').map((value) => ({ type: 'string', value }))
          : fc.oneof(
              fc.integer({ min: -HOUR, max: 7 * HOUR }).map((ms) => ({ type: 'date', value: at(Math.floor(ms / 1000) * 1000) }) as Literal),
              fc.integer({ min: -3600, max: 7 * 3600 }).map((s) => ({ type: 'number', value: String(START / 1000 + s) }) as Literal),
            );
    const predicate = predicates(['ulid', 'ts', 'created_ts', 'topic'], literal);
    let pruning = 0;
    fc.assert(
      fc.property(predicate, (p) => {
        const test = compileFilter(p, messages);
        const plan = planSegments(segments, p, messageOrder);
        if (plan.pruned.length > 0) pruning++;
        const ids = (rows: Row[]) =>
          rows
            .filter(test)
            .map((row) => row.id)
            .sort();
        assert.deepEqual(ids(rowsOf(plan.read)), ids(all), canonicalText(p));
      }),
      { numRuns: 300, seed: 17 },
    );
    assert.ok(pruning > 30, `only ${pruning} predicates pruned a segment`);
  });

  test('an export skips the segments a time condition excludes: only their tips are read', async () => {
    const repo = openRepository(dir);
    const where = new Map([['messages', parseFilter('ts >= 2025-03-01T03:00:00Z and topic = "alerts"')]]);
    const plan = planSegments(everything(), where.get('messages'), messageOrder);
    // refs/gatos/messages/<topic>/YYYY/MM/DD/HH/<ulid>: the segments of hours 3 to 5 are kept.
    assert.deepEqual(plan.read.map((s) => `${s.topic} ${s.ref.split('/')[7]}`).sort(), [
      'alerts 03',
      'alerts 04',
      'alerts 05',
      'deploys 03',
      'deploys 04',
      'deploys 05',
    ]);
    assert.equal(plan.pruned.length, 6);
    assert.match(
      plan.pruned[0]?.reason ?? '',
      /its messages \(2025-03-01T00:00:00\.000Z to 2025-03-01T00:20:00\.\d{3}Z\) cannot match ts >= 2025-03-01T03:00:00Z/,
    );
    const untouchable = new Set(
      plan.pruned.flatMap((s) => [
        ...git(dir, ['rev-list', s.ref]).trim().split('\n').slice(1),
        git(dir, ['rev-parse', `${s.ref}^{tree}`]).trim(),
      ]),
    );
    const reads = new Set<Oid>();
    const manifest = await runExport(
      { objects: recordingReads(repo.objects, reads), refs: repo.refs },
      { format: 'sqlite', out: `${newDir()}/m.sqlite`, tables: ['messages'], where, clock: () => 0 },
    );
    assert.equal(manifest.row_counts.messages, 3 * 5);
    assert.equal([...reads].filter((oid) => untouchable.has(oid)).length, 0);
    // Every segment of the topic read is recorded, pruned ones too: a continued export knows them unchanged.
    assert.equal(Object.keys(manifest.message_segments ?? {}).length, 6);
  });

  test('a continued export reads a pruned segment once it grows into the window', async () => {
    const repo = openRepository(dir);
    const out = `${newDir()}/grow.sqlite`;
    // The last alerts segment ends at 05:20; the window starts at 05:30.
    const options = {
      format: 'sqlite' as const,
      out,
      tables: ['messages'],
      where: new Map([['messages', parseFilter('ts >= 2025-03-01T05:30:00Z')]]),
      clock: () => 0,
    };
    assert.equal((await runExport(repo, options)).row_counts.messages, 0);
    await publishAt('alerts', 5 * HOUR + 40 * 60_000, 2);
    const continued = await runExport(repo, options);
    assert.equal(continued.incremental, true);
    assert.equal(continued.row_counts.messages, 2);
    const fresh = await runExport(repo, { ...options, out: `${newDir()}/fresh.sqlite` });
    assert.equal(fresh.row_counts.messages, 2);
    assert.deepEqual(continued.message_segments, fresh.message_segments);
  });
});

describe('damaged input', () => {
  test('a message whose envelope is not JSON is corrupt_object naming its commit', () => {
    const objects = new MemoryObjectStore();
    const blob = objects.write('blob', Buffer.from('{"ns": "a", '));
    const dir = objects.write('tree', serializeTree([{ mode: '100644', name: 'envelope.json', oid: blob }]));
    const tree = objects.write('tree', serializeTree([{ mode: '40000', name: 'message', oid: dir }]));
    const sig = { name: 'p', email: 'p@x', timestamp: 1_700_000_000, timezone: '+0000' };
    const message = 'alerts.event\n\nEvent-Id: ulid:01HF7YAX8442DFRBEDPQ0VWJ90\n';
    const tip = objects.write('commit', serializeCommit({ tree, parents: [], author: sig, committer: sig, message }));
    assert.throws(
      () => segmentRows(objects, [{ topic: 'alerts', tip }], () => undefined),
      (err: unknown) =>
        err instanceof GatosError && err.code === 'corrupt_object' && err.message.startsWith(`message envelope of commit ${tip}: `),
    );
  });
});
