import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalText, type Literal, type Predicate } from '../../dsl/ast.js';
import { compileFilter } from '../../dsl/evaluate.js';
import { parseFilter } from '../../dsl/parse.js';
import { planJournals } from '../../dsl/plan.js';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import type { Oid } from '../../engine/git/ports.js';
import { openRepository } from '../../engine/git/repository.js';
import { ComputePool } from '../../engine/scheduler/pool.js';
import { runExport } from '../../exporter/export.js';
import { journalRefs, journalRows, messageTasks, TASK_MESSAGES } from '../../exporter/extract.js';
import { type Row, tableDef } from '../../exporter/tables.js';
import { generateFixture } from '../../fixtures/generate.js';
import { populatePlanes } from '../../fixtures/planes.js';
import { git, scratch } from '../helpers/git.js';
import { recordingReads } from '../helpers/objects.js';

const { dir: newDir } = scratch();
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

const leaf: fc.Arbitrary<Predicate> = fc.constantFrom('ns', 'actor', 'kind', 'ts', 'payload.n').chain((column) =>
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

const predicate: fc.Arbitrary<Predicate> = fc.letrec<{ p: Predicate }>((tie) => ({
  p: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ kind: fc.constant('and' as const), args: fc.array(tie('p'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('or' as const), args: fc.array(tie('p'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('not' as const), arg: tie('p') }),
  ),
})).p;

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
