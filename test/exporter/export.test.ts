import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { parseFilter } from '../../dsl/parse.js';
import { blake3Hex, blake3Ready } from '../../engine/codec/blake3.js';
import { canonicalize } from '../../engine/codec/canonical-json.js';
import { type GatosError, hasCode } from '../../engine/errors.js';
import type { Oid } from '../../engine/git/ports.js';
import { openRepository } from '../../engine/git/repository.js';
import { enqueue } from '../../engine/jobs/enqueue.js';
import { checkManifest } from '../../engine/jobs/manifest.js';
import { runWorker } from '../../engine/jobs/worker.js';
import type { Ledger } from '../../engine/ledger/context.js';
import { appendEvents } from '../../engine/ledger/journal.js';
import { publish } from '../../engine/messages/publish.js';
import { ComputePool } from '../../engine/scheduler/pool.js';
import { fold } from '../../engine/state/fold.js';
import { checkFoldSpec } from '../../engine/state/fold-spec.js';
import { type ExportOptions, runExport } from '../../exporter/export.js';
import type { ExportManifest } from '../../exporter/manifest.js';
import { EXPORT_APPLICATION_ID } from '../../exporter/sqlite-sink.js';
import { PAGE_SIZE } from '../../exporter/staging.js';
import { TABLE_NAMES, tableDef } from '../../exporter/tables.js';
import { verifyExport } from '../../exporter/verify.js';
import { generateFixture } from '../../fixtures/generate.js';
import { onSmallDevice } from '../helpers/device.js';
import { git, scratch } from '../helpers/git.js';
import { trustedLedger } from '../helpers/ledger.js';
import { recordingReads } from '../helpers/objects.js';
import { referenceSchema } from '../helpers/schemas.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
// Test-side Parquet rewriting (re-encoded and forged files for verify --deep).
const requireCjs = createRequire(import.meta.url);
const arrow = requireCjs('apache-arrow') as typeof import('apache-arrow');
const parquet = requireCjs('parquet-wasm') as typeof import('parquet-wasm');
const { repo: newRepo, dir: newDir } = scratch();
const CLOCK = () => 1_764_000_000_000;

before(() => blake3Ready());

const shell = spawnSync('sqlite3', ['-version']).status === 0;

/**
 * Runs a query with the stock sqlite3 shell (the interop check; .ci/run installs it), or with
 * better-sqlite3 on a machine without the shell: one column per row, rows joined by newlines.
 */
function sql(file: string, query: string): string {
  // stderr is captured: a statement a test expects to fail must not print its error.
  if (shell) return execFileSync('sqlite3', [file, query], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const db = new Database(file);
  try {
    const statement = db.prepare(query);
    if (!statement.reader) {
      statement.run();
      return '';
    }
    return (statement.raw().all() as unknown[][]).map((r) => r.map((v) => (v === null ? '' : String(v))).join('|')).join('\n');
  } finally {
    db.close();
  }
}

async function populated(): Promise<{ dir: string; ctx: Ledger; gitDir: string }> {
  const dir = newRepo();
  const repo = openRepository(dir);
  const ctx = trustedLedger(repo, join(newDir(), 'keys'), CLOCK);
  await appendEvents(ctx, [
    { ns: 'shop', type: 'order.placed', actor: 'user:alice', payload: { sku: 'apple', n: 2 } },
    { ns: 'shop', type: 'order.placed', actor: 'user:bob', payload: { sku: 'pear', n: 1 } },
    { ns: 'ops', type: 'deploy', actor: 'user:alice', payload: { service: 'api' } },
  ]);
  await publish(ctx, 'deploys', [{ ns: 'ops', type: 'deploy.announced', payload: { service: 'api' } }]);
  const spec = checkFoldSpec({
    version: 1,
    rules: [
      {
        on: 'order.placed',
        ops: [
          { op: 'increment', path: 'orders/{payload.sku}', from: 'payload.n' },
          { op: 'set', path: 'buyers/{actor}', from: 'payload' },
        ],
      },
    ],
    private: [{ path: 'buyers/*/*', capability: 'age://shop' }],
  });
  await fold(ctx, 'shop', { gitDir: repo.gitDir, store: join(newDir(), 'private'), spec });
  await enqueue({ ...ctx, clock: () => Date.now() }, [checkManifest({ command: ['/bin/true'], timeout: 10 })]);
  await runWorker({ ...ctx, clock: () => Date.now() }, { worker: 'w', exitWhenIdle: true, workdir: dir });
  return { dir, ctx, gitDir: repo.gitDir };
}

const options = (out: string, extra: Partial<ExportOptions> = {}): ExportOptions => ({ format: 'sqlite', out, clock: CLOCK, ...extra });

/**
 * Every row of a Parquet dataset directory as @dsnp/parquetjs reads it, with Hive partition
 * values (`k=v` directories) filled in. That reader has no ZSTD codec of its own: fzstd (an
 * independent decoder) is registered for it.
 */
async function parquetRows(dir: string): Promise<Array<Record<string, unknown>>> {
  const require = createRequire(import.meta.url);
  const compression = require('@dsnp/parquetjs/dist/lib/compression.js') as {
    PARQUET_COMPRESSION_METHODS: Record<string, { deflate: (b: Buffer) => Buffer; inflate: (b: Buffer) => Buffer }>;
  };
  const { decompress } = await import('fzstd');
  compression.PARQUET_COMPRESSION_METHODS.ZSTD ??= {
    deflate: () => {
      throw new Error('read only');
    },
    inflate: (bytes) => Buffer.from(decompress(bytes)),
  };
  const { ParquetReader } = (await import('@dsnp/parquetjs')).default;
  const rows: Array<Record<string, unknown>> = [];
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.parquet'))
    .sort();
  for (const name of files) {
    const partition = Object.fromEntries(
      name
        .split('/')
        .slice(0, -1)
        .map((part) => part.split('=') as [string, string]),
    );
    const reader = await ParquetReader.openFile(join(dir, name));
    try {
      const cursor = reader.getCursor();
      for (
        let row = (await cursor.next()) as Record<string, unknown> | null;
        row;
        row = (await cursor.next()) as Record<string, unknown> | null
      )
        rows.push({ ...partition, ...row });
    } finally {
      await reader.close();
    }
  }
  return rows;
}

/** A Parquet value as the SQLite export holds it: timestamps in unix seconds, integers as numbers, absent as null. */
function plainValue(value: unknown, type: string): unknown {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return Math.floor(value.getTime() / 1000);
  if (typeof value === 'bigint') return Number(value);
  if (type === 'integer' || type === 'timestamp') return Number(value);
  return value;
}

/** Records `bytes` as the manifest's entry for `path` (hash and size), as a forger keeping both consistent would. */
function rerecord(manifestFile: string, path: string, bytes: Uint8Array): void {
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as ExportManifest;
  const entry = manifest.files.find((f) => f.path === path);
  assert.ok(entry, `${path} is in the manifest`);
  Object.assign(entry, { blake3: `blake3:${blake3Hex(bytes)}`, size: bytes.length });
  writeFileSync(manifestFile, canonicalize(manifest));
}

describe('export to SQLite', () => {
  test('tables, types, counts against git, manifest schema, ledger head reproducible with stock git', async () => {
    const { dir, ctx } = await populated();
    const out = join(newDir(), 'repo.sqlite');
    const manifest = await runExport(ctx, options(out));
    assert.equal(sql(out, 'select count(*) from commits'), git(dir, ['rev-list', '--count', '--glob=refs/gatos/journal']).trim());
    assert.equal(sql(out, 'select count(*) from events'), '3');
    assert.equal(sql(out, "select count(*) from events where ns = 'shop' and json_extract(payload, '$.sku') = 'apple'"), '1');
    assert.equal(sql(out, "select count(*) from messages where topic = 'deploys'"), '1');
    assert.ok(Number(sql(out, "select count(*) from messages where topic = 'gatos.jobs.events'")) >= 4, 'job transitions are messages too');
    assert.equal(sql(out, 'select path from state_nodes order by path'), 'buyers/user/alice\nbuyers/user/bob\norders/apple\norders/pear');
    assert.equal(sql(out, 'select count(*) from pointers'), '2');
    assert.equal(sql(out, 'select status from jobs'), 'succeeded');
    assert.equal(sql(out, 'pragma user_version'), '1000');
    assert.equal(sql(out, 'pragma page_size'), String(PAGE_SIZE));
    // Every table's indexes, including those of the table filled before it was indexed.
    const declared = TABLE_NAMES.flatMap((name) => (tableDef(name).indexes ?? []).map((index) => `${name}_${index.join('_')}`));
    assert.deepEqual(
      sql(out, "select name from sqlite_master where type = 'index' and sql is not null order by name").split('\n'),
      declared.sort(),
    );
    assert.match(sql(out, "explain query plan select id from commits where ref = 'x'"), /USING (COVERING )?INDEX commits_ref/);
    // STRICT tables refuse a wrong type; NOT NULL holds.
    assert.throws(() =>
      sql(
        out,
        "insert into events (id, ns, kind, actor, ulid, ts, payload, commit_id, created_ts, updated_ts) values ('x','a','b','c','d','not a number','{}','e',1,1)",
      ),
    );
    assert.equal(readFileSync(`${out}.explorer-root.txt`, 'utf8').trim(), manifest.explorer_root);
    const listing = git(dir, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/gatos/journal']);
    assert.equal(manifest.ledger_head, git(dir, ['hash-object', '--stdin'], listing).trim());
    const validate = referenceSchema('export/export_manifest.schema.json');
    assert.ok(validate(JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8'))), JSON.stringify(validate.errors));
    // No private value left the private store.
    assert.ok(
      !sql(out, 'select shape from state_nodes').includes('apple') ||
        sql(out, "select shape from state_nodes where path like 'buyers/%'").includes('opaque_pointer'),
    );
    assert.equal((await verifyExport(out, ctx)).ok, true);
  });

  test('the same repository exports the same bytes; --tables and --columns narrow it', async () => {
    const { ctx } = await populated();
    const a = join(newDir(), 'a.sqlite');
    const b = join(newDir(), 'b.sqlite');
    await runExport(ctx, options(a));
    await runExport(ctx, options(b));
    assert.equal(blake3Hex(readFileSync(a)), blake3Hex(readFileSync(b)));
    const narrow = join(newDir(), 'narrow.sqlite');
    const manifest = await runExport(ctx, options(narrow, { tables: ['events', 'export_info'], columns: new Map([['events', ['kind']]]) }));
    assert.deepEqual(manifest.exported_tables, ['events', 'export_info']);
    assert.equal(sql(narrow, "select group_concat(name) from pragma_table_info('events')"), 'id,kind,commit_id');
    assert.equal(manifest.tables.commits, false);
  });

  test('--where: pushed down and applied to every row; the result equals SQL over the full export', async () => {
    const { ctx } = await populated();
    const full = join(newDir(), 'full.sqlite');
    await runExport(ctx, options(full));
    const filtered = join(newDir(), 'where.sqlite');
    const where = new Map([['events', parseFilter('ns = "shop" and payload.n >= 2')]]);
    const manifest = await runExport(ctx, options(filtered, { where }));
    assert.equal(
      sql(filtered, 'select id from events order by id'),
      sql(full, "select id from events where ns = 'shop' and json_extract(payload, '$.n') >= 2 order by id"),
    );
    assert.equal(manifest.row_counts.events, 1);
    assert.deepEqual((manifest.filters as { where: Record<string, string> }).where, { events: 'ns = "shop" and payload.n >= 2' });
    await assert.rejects(
      runExport(ctx, options(join(newDir(), 'bad.sqlite'), { where: new Map([['events', parseFilter('nope = 1')]]) })),
      (err: unknown) => {
        return (err as { code?: string }).code === 'UNSUPPORTED_FILTER';
      },
    );
    assert.equal(ctx.refs.list('refs/gatos/audit/export/').length, 1, 'the refusal is audited');
  });

  test('--since and --until bound the journal walk', async () => {
    const { dir, ctx } = await populated();
    const history = git(dir, ['rev-list', '--reverse', 'refs/gatos/journal/shop/user/alice']).trim().split('\n');
    await appendEvents(ctx, [
      { ns: 'shop', type: 'order.placed', actor: 'user:alice', payload: { sku: 'fig', n: 1 } },
      { ns: 'shop', type: 'order.placed', actor: 'user:alice', payload: { sku: 'kiwi', n: 1 } },
    ]);
    const all = git(dir, ['rev-list', '--reverse', 'refs/gatos/journal/shop/user/alice']).trim().split('\n');
    assert.equal(all.length, history.length + 2);
    const until = join(newDir(), 'until.sqlite');
    const m = await runExport(ctx, options(until, { tables: ['commits', 'events'], until: all[history.length] as string }));
    assert.equal(m.commit_range.end, all[history.length]);
    assert.equal(sql(until, "select count(*) from events where json_extract(payload, '$.sku') = 'fig'"), '1');
    assert.equal(sql(until, "select count(*) from events where json_extract(payload, '$.sku') = 'kiwi'"), '0');
    const since = join(newDir(), 'since.sqlite');
    await runExport(ctx, options(since, { tables: ['events'], since: all[history.length] as string }));
    assert.equal(sql(since, "select json_extract(payload, '$.sku') from events where ns = 'shop' and actor = 'user:alice'"), 'kiwi');
  });

  test('a second export continues from the recorded heads and upserts; --full starts over', async () => {
    const { ctx } = await populated();
    const out = join(newDir(), 'inc.sqlite');
    await runExport(ctx, options(out));
    // As an earlier version wrote it: SQLite's default page size. A continued file keeps its own.
    const older = new Database(out);
    older.pragma('page_size = 4096');
    older.exec('VACUUM');
    older.close();
    await appendEvents(ctx, [{ ns: 'shop', type: 'order.placed', actor: 'user:bob', payload: { sku: 'apple', n: 5 } }]);
    const second = await runExport(ctx, options(out));
    assert.equal(second.incremental, true);
    assert.equal(second.row_counts.events, 4);
    assert.equal(sql(out, 'select count(distinct id) from events'), '4');
    assert.equal(sql(out, 'pragma page_size'), '4096');
    assert.equal(sql(out, 'pragma integrity_check'), 'ok');
    const third = await runExport(ctx, options(out, { full: true }));
    assert.equal(third.incremental, false);
    assert.equal(third.row_counts.events, 4);
    assert.equal(sql(out, 'pragma page_size'), String(PAGE_SIZE));
    assert.equal((await verifyExport(out, ctx)).ok, true);
  });

  test('an export made with other filters is not continued: the file is written in full with the new ones', async () => {
    const { ctx } = await populated();
    const out = join(newDir(), 'refiltered.sqlite');
    const onNs = (ns: string) => options(out, { where: new Map([['events', parseFilter(`ns = "${ns}"`)]]) });
    await runExport(ctx, onNs('shop'));
    assert.equal(sql(out, 'select group_concat(distinct ns) from events'), 'shop');
    const other = await runExport(ctx, onNs('ops'));
    assert.equal(other.incremental, false);
    assert.equal(other.restarted_because, 'the export there was made with other filters');
    assert.equal(sql(out, 'select group_concat(distinct ns) from events'), 'ops');
    assert.equal((await verifyExport(out, ctx, { deep: true })).ok, true);
    // The same filters again: continued.
    const same = await runExport(ctx, onNs('ops'));
    assert.equal(same.incremental, true);
    assert.equal(same.restarted_because, undefined);
  });

  test('a continued export reads only the message segments that changed; when one is pruned, all again', async () => {
    const { dir, ctx } = await populated();
    await publish(ctx, 'alerts', [{ ns: 'ops', type: 'alert', payload: { level: 1 } }]);
    const out = join(newDir(), 'segments.sqlite');
    const first = await runExport(ctx, options(out));
    const recorded = first.message_segments ?? {};
    const segmentOf = (topic: string) => Object.keys(recorded).find((ref) => ref.startsWith(`refs/gatos/messages/${topic}/`)) as string;
    const messages = first.row_counts.messages as number;
    assert.ok(segmentOf('alerts') && segmentOf('deploys'));
    // A segment's tree is read only when its messages are.
    const treeOf = (ref: string) => git(dir, ['rev-parse', `${ref}^{tree}`]).trim();
    const reads = new Set<Oid>();
    const watched = recordingReads(ctx.objects, reads);
    const continued = await runExport({ objects: watched, refs: ctx.refs }, options(out));
    assert.equal(continued.incremental, true);
    assert.equal(continued.row_counts.messages, messages);
    assert.ok(!reads.has(treeOf(segmentOf('alerts'))) && !reads.has(treeOf(segmentOf('deploys'))), 'no segment read');
    await publish(ctx, 'alerts', [{ ns: 'ops', type: 'alert', payload: { level: 2 } }]);
    reads.clear();
    const grown = await runExport({ objects: watched, refs: ctx.refs }, options(out));
    assert.equal(grown.row_counts.messages, messages + 1);
    assert.ok(reads.has(treeOf(segmentOf('alerts'))) && !reads.has(treeOf(segmentOf('deploys'))), 'only the grown segment read');
    const rowsOf = (file: string) =>
      sql(
        file,
        "select group_concat(id || ' ' || content_id || ' ' || commit_id || ' ' || payload, ',') from (select * from messages order by id)",
      );
    const fresh = join(newDir(), 'fresh.sqlite');
    await runExport(ctx, options(fresh));
    assert.equal(rowsOf(out), rowsOf(fresh));
    // A segment gone (as pruning removes it): its rows cannot be told apart, so all are read again.
    git(dir, ['update-ref', '-d', segmentOf('deploys')]);
    const pruned = await runExport(ctx, options(out));
    assert.equal(pruned.incremental, true);
    assert.equal(pruned.row_counts.messages, messages);
    assert.equal(sql(out, "select count(*) from messages where topic = 'deploys'"), '0');
    assert.equal((await verifyExport(out, ctx, { deep: true })).ok, true);
  });

  test('a journal or segment rewound since the earlier export is not continued: no rows of dropped commits stay', async () => {
    const { dir, ctx } = await populated();
    const out = join(newDir(), 'rewound.sqlite');
    const fresh = async () => {
      const file = join(newDir(), 'fresh.sqlite');
      await runExport(ctx, options(file));
      return file;
    };
    const rows = (file: string, table: string) => sql(file, `select group_concat(id) from (select id from ${table} order by id)`);
    await appendEvents(ctx, [{ ns: 'shop', type: 'order.placed', actor: 'user:alice', payload: { sku: 'fig', n: 3 } }]);
    await runExport(ctx, options(out));
    // alice's shop journal loses its newest event (as `git update-ref`, or a forced push, can do).
    const journal = git(dir, ['for-each-ref', '--format=%(refname)', 'refs/gatos/journal/shop/'])
      .split('\n')
      .find((r) => r.includes('alice'));
    git(dir, ['update-ref', journal as string, `${journal}~1`]);
    const rewound = await runExport(ctx, options(out));
    assert.equal(rewound.incremental, false);
    assert.equal(rewound.restarted_because, `journal ${journal} was rewound or rewritten since the export there`);
    assert.equal(rows(out, 'events'), rows(await fresh(), 'events'));
    assert.equal(rewound.row_counts.events, 3);
    // A segment rewound: the other rows stay continued, the messages are read again in full.
    await publish(ctx, 'deploys', [{ ns: 'ops', type: 'deploy.announced', payload: { service: 'web' } }]);
    await runExport(ctx, options(out));
    const segment = git(dir, ['for-each-ref', '--format=%(refname)', 'refs/gatos/messages/deploys/'])
      .split('\n')
      .find((r) => !r.endsWith('/head'));
    git(dir, ['update-ref', segment as string, `${segment}~1`]);
    await publish(ctx, 'alerts', [{ ns: 'ops', type: 'alert', payload: { level: 1 } }]);
    const continued = await runExport(ctx, options(out));
    assert.equal(continued.incremental, true);
    assert.equal(rows(out, 'messages'), rows(await fresh(), 'messages'));
    assert.equal(sql(out, "select count(*) from messages where topic = 'deploys'"), '1');
    assert.equal((await verifyExport(out, ctx, { deep: true })).ok, true);
  });

  test('cancelled (signal aborted) in one thread or on the pool: temporary files removed, the earlier export untouched', async () => {
    const { ctx, gitDir } = await populated();
    const outDir = newDir();
    const out = join(outDir, 'cancel.sqlite');
    await runExport(ctx, options(out));
    const before = new Map(readdirSync(outDir).map((name) => [name, readFileSync(join(outDir, name))]));
    const pool = new ComputePool({ threads: 2 });
    try {
      for (const [format, onPool, abortAt] of [
        ['sqlite', false, 'extract'],
        ['sqlite', true, 'extract'],
        ['sqlite', false, 'commits'],
        ['parquet', false, 'commits'],
        ['parquet', true, 'extract'],
        ['sqlite', false, 'start'],
        // In the tail: the staging area's files and the side files are then being removed in
        // the background, which the failure waits for.
        ['sqlite', true, 'jobs'],
        ['sqlite', false, 'jobs'],
        ['parquet', true, 'jobs'],
      ] as const) {
        const cancellation = new AbortController();
        // Aborted before it starts (with a filter no event passes, so few rows are staged).
        if (abortAt === 'start') cancellation.abort();
        const target = format === 'sqlite' ? out : join(outDir, 'cancel.parquet');
        await assert.rejects(
          runExport(
            ctx,
            options(target, {
              format,
              full: true,
              signal: cancellation.signal,
              ...(abortAt === 'start' ? { where: new Map([['events', parseFilter('ns = "none"')]]) } : {}),
              // Aborted as the reading ends, or as the first table is written in this thread.
              onProgress: (p) => {
                if (p.step === abortAt && (abortAt !== 'extract' || p.done)) cancellation.abort();
              },
              ...(onPool ? { pool, gitDir } : {}),
            }),
          ),
          (err: unknown) => hasCode(err, 'cancelled'),
          `${format}, ${onPool ? 'pool' : 'one thread'}, at ${abortAt}`,
        );
        assert.deepEqual(readdirSync(outDir).sort(), [...before.keys()].sort(), 'nothing left behind, nothing removed');
        for (const [name, bytes] of before) assert.ok(readFileSync(join(outDir, name)).equals(bytes), `${name} unchanged`);
      }
    } finally {
      await pool.close();
    }
    assert.equal((await verifyExport(out, ctx)).ok, true);
  });

  test('a re-export replaces the export there (file or directory); a copy a crash left aside is removed', async () => {
    const { ctx } = await populated();
    const outDir = newDir();
    for (const format of ['sqlite', 'parquet'] as const) {
      const out = join(outDir, `again.${format}`);
      await runExport(ctx, options(out, { format }));
      // What an export killed between moving the old output aside and removing it leaves.
      mkdirSync(`${out}.replaced`);
      writeFileSync(join(`${out}.replaced`, 'stale'), 'x');
      const manifest = await runExport(ctx, options(out, { format, full: true }));
      assert.equal(existsSync(`${out}.replaced`), false, `${format}: nothing left aside`);
      assert.equal((await verifyExport(out, ctx)).ok, true, `${format}: the new export verifies`);
      assert.equal(manifest.complete, true);
    }
    assert.deepEqual(readdirSync(outDir).sort(), [
      'again.parquet',
      'again.parquet.explorer-root.txt',
      'again.parquet.manifest.json',
      'again.sqlite',
      'again.sqlite.explorer-root.txt',
      'again.sqlite.manifest.json',
    ]);
  });

  test('rows of a worker task that failed never reach a later export on the same pool', async () => {
    const { dir, ctx, gitDir } = await populated();
    // A journal of two commits that read as events, the older one's parent a blob: the task
    // reading it stages the newer one's rows, then fails.
    const head = git(dir, ['for-each-ref', '--count=1', '--format=%(objectname)', 'refs/gatos/journal/']).trim();
    const withParent = (parent: string) =>
      git(
        dir,
        ['hash-object', '-t', 'commit', '--literally', '-w', '--stdin'],
        git(dir, ['cat-file', 'commit', head])
          .replace(/^parent .*\n/gm, '')
          .replace(/^(tree [0-9a-f]{40}\n)/, `$1parent ${parent}\n`),
      ).trim();
    const older = withParent(git(dir, ['hash-object', '-w', '--stdin'], 'not a commit').trim());
    const broken = withParent(older);
    // Named to be read last: no later task of that export empties the worker's rows.
    const brokenRef = 'refs/gatos/journal/zzz/agent/broken';
    git(dir, ['update-ref', brokenRef, broken]);
    const outDir = newDir();
    // One worker, so the task after the failed one runs where the failed one left its rows.
    const pool = new ComputePool({ threads: 1 });
    try {
      for (const format of ['parquet', 'sqlite'] as const) {
        const out = join(outDir, `retry.${format}`);
        await assert.rejects(
          runExport(ctx, options(out, { format, full: true, pool, gitDir })),
          (err: unknown) => hasCode(err, 'corrupt_object'),
          `${format}: the broken journal fails the export`,
        );
      }
      git(dir, ['update-ref', '-d', brokenRef]);
      for (const format of ['parquet', 'sqlite'] as const) {
        const out = join(outDir, `retry.${format}`);
        const retried = await runExport(ctx, options(out, { format, full: true, pool, gitDir }));
        const alone = await runExport(ctx, options(join(outDir, `alone.${format}`), { format, full: true }));
        assert.deepEqual(retried.row_counts, alone.row_counts, `${format}: the retry holds the rows of an export on its own`);
        assert.equal(retried.explorer_root, alone.explorer_root);
      }
      assert.equal(sql(join(outDir, 'retry.sqlite'), `SELECT count(*) FROM commits WHERE id = '${broken}'`), '0');
    } finally {
      await pool.close();
    }
  });

  test('a device that fills up during an export: disk_full, temporary files removed, the earlier export untouched', (t) =>
    onSmallDevice(t, 4 << 20, async (device) => {
      const { dir, ctx, gitDir } = await populated();
      const out = join(device.dir, 'full.sqlite');
      await runExport(ctx, options(out));
      const pool = new ComputePool({ threads: 2 });
      try {
        // The rest of the device filled but for too little for another export, so that the
        // staging file, a worker's shard or the output is the one that finds it full.
        for (const [format, onPool, left] of [
          ['sqlite', false, 24],
          ['sqlite', true, 24],
          ['sqlite', true, 64],
          ['sqlite', true, 80],
          ['sqlite', false, 160],
          ['parquet', false, 24],
          ['parquet', true, 48],
          ['parquet', true, 80],
        ] as const) {
          device.fill(left << 10);
          const free = device.free();
          const kept = new Map(device.files().map((name) => [name, readFileSync(join(device.dir, name))]));
          const target = format === 'sqlite' ? out : join(device.dir, 'full.parquet');
          await assert.rejects(
            runExport(ctx, options(target, { format, full: true, ...(onPool ? { pool, gitDir } : {}) })),
            (err: unknown) => hasCode(err, 'disk_full') && (err as GatosError).message.includes(target),
            `${format}, ${onPool ? 'pool' : 'one thread'}, ${left} KiB left`,
          );
          assert.deepEqual(device.files(), [...kept.keys()], 'nothing left behind, nothing removed');
          // Nor held: a removed file a worker still has open would keep its space.
          assert.equal(device.free(), free, 'the space is free again');
          for (const [name, bytes] of kept) assert.ok(readFileSync(join(device.dir, name)).equals(bytes), `${name} unchanged`);
        }
      } finally {
        await pool.close();
      }
      device.fill(24 << 10);
      const cli = spawnSync(process.execPath, [GATOS, 'export', 'sqlite', '--out', out, '--full'], { cwd: dir, encoding: 'utf8' });
      assert.equal(cli.status, 1, cli.stderr);
      assert.match(cli.stderr, /no space left on the device.*\[disk_full\]/);
      device.empty();
      assert.equal((await verifyExport(out, ctx)).ok, true);
    }));

  test('one export per output path: a live holder of <out>.lock refuses a second, a dead one is taken over', async () => {
    const { ctx } = await populated();
    const outDir = newDir();
    const out = join(outDir, 'locked.sqlite');
    await runExport(ctx, options(out));
    const before = new Map(readdirSync(outDir).map((name) => [name, readFileSync(join(outDir, name))]));
    // Two at once in one process: the second finds the first's lock.
    const first = runExport(ctx, options(out, { full: true }));
    await assert.rejects(runExport(ctx, options(out, { full: true })), (err: unknown) => hasCode(err, 'export_locked'));
    await first;
    assert.deepEqual(readdirSync(outDir).sort(), [...before.keys()].sort(), 'the lock is gone with the export');
    // A lock held by a live process (this one) on this host: refused, nothing touched.
    writeFileSync(`${out}.lock`, `${process.pid} ${hostname()}\n`);
    const held = new Map(readdirSync(outDir).map((name) => [name, readFileSync(join(outDir, name))]));
    await assert.rejects(runExport(ctx, options(out, { full: true })), (err: unknown) => hasCode(err, 'export_locked'));
    for (const [name, bytes] of held) assert.ok(readFileSync(join(outDir, name)).equals(bytes), `${name} unchanged`);
    // Left by a process that is gone: taken over, and removed at the end (with the temporary
    // manifest and Explorer-Root files a killed export leaves).
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    writeFileSync(`${out}.lock`, `${gone} ${hostname()}\n`);
    writeFileSync(`${out}.manifest.json.tmp-${gone}-0`, '{"format":');
    writeFileSync(`${out}.explorer-root.txt.tmp-${gone}-1`, '');
    assert.equal((await runExport(ctx, options(out, { full: true }))).complete, true);
    assert.equal(existsSync(`${out}.lock`), false);
    assert.deepEqual(readdirSync(outDir).sort(), [...before.keys()].sort(), 'no temporary file left from the killed export');
    // Empty (its writer died as it created it): stale too.
    writeFileSync(`${out}.lock`, '');
    assert.equal((await runExport(ctx, options(out, { full: true }))).complete, true);
    assert.equal(existsSync(`${out}.lock`), false);
  });

  test('an --out holding anything an export did not write is refused and left as it was', async () => {
    const { ctx } = await populated();
    const home = newDir();
    writeFileSync(join(home, 'notes.txt'), 'precious');
    const document = join(newDir(), 'report.txt');
    writeFileSync(document, 'precious');
    const otherDb = join(newDir(), 'app.sqlite');
    new Database(otherDb).exec('CREATE TABLE t (x)');
    for (const [format, out] of [
      ['parquet', home],
      ['sqlite', home],
      ['sqlite', document],
      ['parquet', document],
      ['sqlite', otherDb],
    ] as const) {
      const before = readdirSync(dirname(out)).sort();
      await assert.rejects(
        runExport(ctx, options(out, { format })),
        (err: unknown) => hasCode(err, 'output_exists'),
        `${format} over ${out}`,
      );
      assert.deepEqual(readdirSync(dirname(out)).sort(), before);
    }
    assert.equal(readFileSync(join(home, 'notes.txt'), 'utf8'), 'precious');
    assert.equal(readFileSync(document, 'utf8'), 'precious');
    // Empty (a directory, or a file as mktemp makes), or an export's own output in either format: replaced.
    const emptyFile = join(newDir(), 'tmp.XXXX');
    writeFileSync(emptyFile, '');
    assert.equal((await runExport(ctx, options(emptyFile, { format: 'sqlite' }))).complete, true);
    // Inside a directory of its own: an export's manifest and Explorer-Root file go beside it.
    const empty = join(newDir(), 'empty');
    mkdirSync(empty);
    assert.equal((await runExport(ctx, options(empty, { format: 'parquet' }))).complete, true);
    assert.equal((await runExport(ctx, options(empty, { format: 'parquet' }))).complete, true);
    assert.equal((await runExport(ctx, options(empty, { format: 'sqlite' }))).complete, true);
    assert.equal((await runExport(ctx, options(empty, { format: 'sqlite', full: true }))).complete, true);
    assert.equal((await runExport(ctx, options(empty, { format: 'parquet' }))).complete, true);
    // An export without an export_info table is known by its application id, in full or continued.
    const messagesOnly = join(newDir(), 'messages.sqlite');
    assert.equal((await runExport(ctx, options(messagesOnly, { tables: ['messages'] }))).complete, true);
    assert.equal(sql(messagesOnly, 'pragma application_id'), String(EXPORT_APPLICATION_ID));
    assert.equal((await runExport(ctx, options(messagesOnly, { tables: ['messages'] }))).incremental, true);
    assert.equal((await runExport(ctx, options(messagesOnly, { tables: ['messages'], full: true }))).complete, true);
    // A trailing separator (shell completion's) names the same output: files go beside it, not into it.
    const slashed = join(newDir(), 'ds');
    assert.equal((await runExport(ctx, options(`${slashed}/`, { format: 'parquet', tables: ['jobs'] }))).complete, true);
    assert.equal(existsSync(`${slashed}.manifest.json`) && existsSync(`${slashed}.explorer-root.txt`), true);
    assert.equal((await verifyExport(`${slashed}/`)).ok, true);
    // A damaged manifest cannot be continued from: the error says how to start over.
    writeFileSync(`${messagesOnly}.manifest.json`, '{damaged');
    await assert.rejects(
      runExport(ctx, options(messagesOnly, { tables: ['messages'] })),
      (err: unknown) => hasCode(err, 'invalid_export') && /--full exports afresh/.test((err as Error).message),
    );
    assert.equal((await runExport(ctx, options(messagesOnly, { tables: ['messages'], full: true }))).complete, true);
  });

  test('verify: edited bytes, counts, roots, incomplete manifests and a moved repo each fail with a reason', async () => {
    const { ctx } = await populated();
    const out = join(newDir(), 'v.sqlite');
    await runExport(ctx, options(out));
    const manifestPath = `${out}.manifest.json`;
    const original = readFileSync(manifestPath, 'utf8');
    const pool = new ComputePool({ threads: 2 });
    after(() => pool.close());
    const codes = async () => {
      const failures = (await verifyExport(out, ctx)).failures;
      assert.deepEqual(
        (await verifyExport(out, ctx, { pool: () => pool, hashTaskBytes: 1 })).failures,
        failures,
        'files hashed on the pool give the same verdict',
      );
      return failures.map((f) => f.code);
    };
    const edit = (change: (m: ExportManifest) => void) => {
      const manifest = JSON.parse(original) as ExportManifest;
      change(manifest);
      writeFileSync(manifestPath, canonicalize(manifest));
    };
    edit((m) => {
      m.row_counts.events = 99;
    });
    assert.deepEqual(await codes(), ['row_count_mismatch']);
    edit((m) => {
      m.explorer_root = '0'.repeat(64);
    });
    assert.deepEqual(await codes(), ['explorer_root_mismatch']);
    edit((m) => {
      m.complete = false;
    });
    assert.deepEqual(await codes(), ['incomplete']);
    writeFileSync(manifestPath, original);
    const bytes = readFileSync(out);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(out, bytes);
    assert.deepEqual(await codes(), ['file_mismatch']);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(out, bytes);
    assert.deepEqual(await codes(), []);
    const rootFile = `${out}.explorer-root.txt`;
    const rootText = readFileSync(rootFile);
    rmSync(rootFile);
    assert.deepEqual(await codes(), ['file_missing']);
    writeFileSync(rootFile, rootText);
    // SQLite would apply a journal or write-ahead log left beside the file when opening it.
    writeFileSync(`${out}-wal`, 'x');
    assert.deepEqual(await codes(), ['file_extra']);
    rmSync(`${out}-wal`);
    await appendEvents(ctx, [{ ns: 'ops', type: 'deploy', actor: 'user:bob', payload: {} }]);
    assert.deepEqual(await codes(), ['repo_moved']);
    assert.equal((await verifyExport(out)).ok, true, 'without a repository the artifact alone is still valid');
  });

  test('Parquet: Hive partitions, typed ZSTD columns DuckDB reads, the same counts as SQLite, verify', async () => {
    const { ctx } = await populated();
    const sqlite = join(newDir(), 'x.sqlite');
    const sqliteManifest = await runExport(ctx, options(sqlite));
    const out = join(newDir(), 'dataset');
    const manifest = await runExport(ctx, options(out, { format: 'parquet' }));
    assert.deepEqual(manifest.row_counts, sqliteManifest.row_counts);
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const one = async (query: string) => (await db.runAndReadAll(query)).getRowObjects()[0] as Record<string, unknown>;
    const events = await one(
      `select count(*) as n, count(distinct day) as days from read_parquet('${out}/events/**/*.parquet', hive_partitioning = true)`,
    );
    assert.equal(Number(events.n), 3);
    assert.equal(Number(events.days), 1);
    const types = await db.runAndReadAll(
      `select column_name, column_type from (describe select * from read_parquet('${out}/jobs/*.parquet'))`,
    );
    const typeOf = Object.fromEntries(types.getRowObjects().map((r) => [r.column_name, r.column_type]));
    assert.deepEqual([typeOf.attempt, typeOf.started_at, typeOf.id], ['BIGINT', 'TIMESTAMP', 'VARCHAR']);
    const codec = await one(`select min(compression) as c, max(compression) as d from parquet_metadata('${out}/events/**/*.parquet')`);
    assert.deepEqual([codec.c, codec.d], ['ZSTD', 'ZSTD']);
    // Columns unique per row (ids, content ids, payloads) carry no dictionary; repeated values do.
    const encodings = await db.runAndReadAll(
      `select path_in_schema as col, encodings from parquet_metadata(['${out}/events/**/*.parquet', '${out}/messages/**/*.parquet'])`,
    );
    const dictionary = new Set(
      encodings
        .getRowObjects()
        .filter((r) => String(r.encodings).includes('DICTIONARY'))
        .map((r) => String(r.col)),
    );
    for (const unique of ['id', 'event_cid', 'content_id', 'ulid', 'payload']) assert.equal(dictionary.has(unique), false, unique);
    assert.ok(dictionary.has('ns') && dictionary.has('kind'));
    const nodes = await one(
      `select count(*) as n from read_parquet('${out}/state_nodes/**/*.parquet', hive_partitioning = true) where state_ref is not null`,
    );
    assert.equal(Number(nodes.n), 4);
    assert.equal((await verifyExport(out, ctx)).ok, true);
    const again = await runExport(ctx, options(join(newDir(), 'dataset'), { format: 'parquet' }));
    assert.deepEqual(
      again.files.map((f) => f.blake3),
      manifest.files.map((f) => f.blake3),
      'the same repository gives the same Parquet bytes',
    );
    const file = join(out, '..', manifest.files[0]?.path as string);
    // A file the manifest does not list, where a reader of the dataset would take it in.
    const stray = join(dirname(file), 'part-99999.parquet');
    writeFileSync(stray, readFileSync(file));
    assert.deepEqual(
      (await verifyExport(out)).failures.map((f) => [f.code, f.detail.split(' ')[0]]),
      [['file_extra', `dataset/${relative(out, stray)}`]],
    );
    rmSync(stray);
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('x')]));
    const here = await verifyExport(out);
    assert.deepEqual(
      here.failures.map((f) => f.code),
      ['file_mismatch'],
    );
    // On the pool (a task per file here) the dataset's files are spread over the workers: the same file is found.
    const pool = new ComputePool({ threads: 2 });
    const onPool = await verifyExport(out, undefined, { pool: () => pool, hashTaskBytes: 1 });
    await pool.close();
    assert.deepEqual(onPool.failures, here.failures);
  });

  test('Parquet read back by an independent reader (@dsnp/parquetjs) gives the rows of the SQLite export', async () => {
    const { ctx } = await populated();
    const file = join(newDir(), 'x.sqlite');
    await runExport(ctx, options(file));
    const out = join(newDir(), 'dataset');
    await runExport(ctx, options(out, { format: 'parquet' }));
    const db = new Database(file, { readonly: true });
    let compared = 0;
    try {
      for (const table of TABLE_NAMES) {
        const def = tableDef(table);
        const key = def.columns[0]?.name as string;
        const expected = db.prepare(`select * from "${table}" order by "${key}"`).all() as Array<Record<string, unknown>>;
        const rows = (await parquetRows(join(out, table))).map((row) =>
          Object.fromEntries(def.columns.map((col) => [col.name, plainValue(row[col.name], col.type)])),
        );
        rows.sort((a, b) => String(a[key]).localeCompare(String(b[key]), 'en', { sensitivity: 'variant' }));
        expected.sort((a, b) => String(a[key]).localeCompare(String(b[key]), 'en', { sensitivity: 'variant' }));
        assert.deepEqual(rows, expected, table);
        compared += rows.length;
      }
    } finally {
      db.close();
    }
    assert.ok(compared >= 20, `only ${compared} rows compared`);
  });

  test('verify --deep re-derives the rows: a consistent forgery (data and manifest) is caught', async () => {
    const { ctx } = await populated();
    const out = join(newDir(), 'deep.sqlite');
    await runExport(ctx, options(out));
    assert.equal((await verifyExport(out, ctx, { deep: true })).ok, true);
    const recordFile = () => rerecord(`${out}.manifest.json`, basename(out), readFileSync(out));
    // The same rows in other pages (as a build with another file layout writes them): still valid.
    const original = readFileSync(out);
    sql(out, 'pragma page_size = 4096');
    sql(out, 'vacuum');
    assert.notDeepEqual(readFileSync(out), original);
    recordFile();
    assert.equal((await verifyExport(out, ctx, { deep: true })).ok, true);
    const parquetOut = join(newDir(), 'deep-parquet');
    await runExport(ctx, options(parquetOut, { format: 'parquet' }));
    assert.equal((await verifyExport(parquetOut, ctx, { deep: true })).ok, true);
    // A Parquet file written again uncompressed: other bytes, the same rows, still valid; one
    // changed value (manifest brought along) is caught by the rows.
    const parquetManifest = `${parquetOut}.manifest.json`;
    const part = (JSON.parse(readFileSync(parquetManifest, 'utf8')) as ExportManifest).files.find((f) => f.path.includes('/events/'))
      ?.path as string;
    const rewriteParquet = (edit?: (payloads: string[]) => void) => {
      const file = join(dirname(parquetOut), part);
      let table = arrow.tableFromIPC(parquet.readParquet(readFileSync(file)).intoIPCStream());
      if (edit) {
        const payloads = Array.from(table.getChild('payload') as Iterable<string>);
        edit(payloads);
        table = table.setChild('payload', arrow.vectorFromArray(payloads, new arrow.Utf8()));
      }
      const plain = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.UNCOMPRESSED).build();
      const bytes = parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), plain);
      writeFileSync(file, bytes);
      rerecord(parquetManifest, part, bytes);
    };
    rewriteParquet();
    assert.equal((await verifyExport(parquetOut, ctx)).ok, true);
    assert.equal((await verifyExport(parquetOut, ctx, { deep: true })).ok, true);
    rewriteParquet((payloads) => {
      payloads[0] = '{"forged":true}';
    });
    assert.equal((await verifyExport(parquetOut, ctx)).ok, true, 'the shallow checks cannot see it');
    assert.deepEqual(
      (await verifyExport(parquetOut, ctx, { deep: true })).failures.map((f) => f.code),
      ['content_mismatch'],
    );
    sql(out, 'update events set payload = \'{"n":99,"sku":"apple"}\' where ns = \'shop\' and actor = \'user:alice\'');
    recordFile();
    assert.equal((await verifyExport(out, ctx)).ok, true, 'the shallow checks cannot see it');
    assert.deepEqual(
      (await verifyExport(out, ctx, { deep: true })).failures.map((f) => f.code),
      ['content_mismatch'],
    );
  });

  test('CLI: a terminal closed (SIGHUP) during an export cancels it cleanly, as Ctrl-C does', async () => {
    // The first progress record comes as reading ends; the tables are then still being written
    // for a second (10k rows a table, 100 rows a file), whatever else the machine runs: a
    // signal sent on reading that record lands in the export, not after it.
    const dir = newDir();
    await generateFixture({ events: 10_000, seed: 4, out: dir });
    const outDir = newDir();
    const args = ['export', 'parquet', '--out', join(outDir, 'p'), '--json', '--threads', '1', '--batch-size', '100'];
    const child = spawn(process.execPath, [GATOS, ...args], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.once('data', () => child.kill('SIGHUP'));
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
    assert.deepEqual([code, signal], [1, null], stdout);
    assert.equal((JSON.parse(stdout) as { error: { code: string } }).error.code, 'cancelled');
    assert.deepEqual(readdirSync(outDir), [], 'no output, lock or staging file left');
  });

  test('CLI: export, verify exit codes (0 valid, 1 invalid, 2 unusable)', async () => {
    const { dir } = await populated();
    const out = join(newDir(), 'cli.sqlite');
    const run = (args: string[]) => spawnSync(process.execPath, [GATOS, ...args], { cwd: dir, encoding: 'utf8' });
    const exported = run(['export', 'sqlite', '--out', out, '--json', '--threads', '2']);
    assert.equal(exported.status, 0, exported.stderr);
    // Its plan says what a second export to the same path skips, or why it would start over.
    const planAt = (...args: string[]) => {
      const result = run(['export', 'plan', '--out', out, '--json', ...args]);
      assert.equal(result.status, 0, result.stderr);
      return JSON.parse(result.stdout) as { continues: unknown; commits: { read: unknown[] }; messages: { segments: { read: unknown[] } } };
    };
    const again = planAt();
    assert.deepEqual(again.continues, {
      journals_unchanged: again.commits.read.length,
      segments_unchanged: again.messages.segments.read.length,
    });
    assert.deepEqual(planAt('--tables', 'events').continues, { restarted_because: 'the export there was made with other filters' });
    assert.equal(planAt('--full').continues, null);
    // Exported again to the same path: the text output says it was continued, unless --full.
    assert.match(run(['export', 'sqlite', '--out', out]).stdout, /\ncontinued from the export already there/);
    assert.doesNotMatch(run(['export', 'sqlite', '--out', out, '--full']).stdout, /continued/);
    // Progress records on stderr: the reading step (rows, bytes, rate, percent, ETA), then one per table.
    const records = exported.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const extract = records.filter((r) => r.event === 'export.progress' && r.step === 'extract').at(-1);
    assert.ok(extract, exported.stderr);
    assert.ok((extract.rows as number) > 0 && (extract.bytes as number) > 0 && typeof extract.rate === 'number', JSON.stringify(extract));
    assert.equal(extract.percent, 100);
    assert.equal(extract.eta_s, 0);
    const events = records.find((r) => r.step === 'events');
    assert.equal(events?.rows, Number(sql(out, 'select count(*) from events')));
    assert.equal(typeof events?.rate, 'number');
    // In one thread a large SQLite table is one long statement: its start is reported first. A
    // repository this small is exported in one thread when --threads is not given.
    for (const threads of [['--threads', '1'], []]) {
      const single = run(['export', 'sqlite', '--out', join(newDir(), 'one.sqlite'), '--json', ...threads]);
      assert.equal(single.status, 0, single.stderr);
      const steps = single.stderr
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string; rows: number })
        .filter((r) => r.step === 'commits');
      assert.deepEqual(
        steps.map((r) => r.rows),
        [0, Number(sql(out, 'select count(*) from commits'))],
        threads.join(' '),
      );
    }
    assert.equal(run(['export', 'verify', out, '--repo', dir]).status, 0);
    // The reader of the progress goes away after the first record: the export still completes.
    const orphan = join(newDir(), 'orphan.sqlite');
    const child = spawn(process.execPath, [GATOS, 'export', 'sqlite', '--out', orphan, '--json', '--threads', '1'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.once('data', () => child.stderr.destroy());
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(run(['export', 'verify', orphan, '--repo', dir]).status, 0);
    assert.deepEqual(readdirSync(dirname(orphan)).sort(), [
      'orphan.sqlite',
      'orphan.sqlite.explorer-root.txt',
      'orphan.sqlite.manifest.json',
    ]);
    writeFileSync(out, 'garbage');
    const bad = run(['export', 'verify', out, '--json']);
    assert.equal(bad.status, 1);
    assert.equal((JSON.parse(bad.stdout) as { failures: Array<{ code: string }> }).failures[0]?.code, 'file_mismatch');
    assert.equal(run(['export', 'verify', join(newDir(), 'none.sqlite')]).status, 2);
    // The plan: what is read and pruned per table, and which tables are not exported at all.
    const plan = run(['export', 'plan', '--tables', 'events,messages', '--where', 'events=ns = "ops"']);
    assert.equal(plan.status, 0, plan.stderr);
    assert.deepEqual(plan.stdout.trim().split('\n'), [
      'journal refs for events: read 1, pruned 2',
      'journal refs for commits: none (commits not exported)',
      'topics for messages: read 3, pruned 0',
      'segments for messages: read 3, pruned 0',
      'where events: ns = "ops"',
    ]);
    // The walk's bounds are part of the plan; what is not a commit of the repository is refused.
    const head = git(dir, ['for-each-ref', '--count=1', '--format=%(objectname)', 'refs/gatos/journal/']).trim();
    const bounded = run(['export', 'plan', '--tables', 'events', '--since', head, '--json']);
    assert.equal(bounded.status, 0, bounded.stderr);
    assert.deepEqual((JSON.parse(bounded.stdout) as { window: unknown }).window, { since: head, until: null });
    assert.match(run(['export', 'plan', '--until', head]).stdout, new RegExp(`\njournal walk: up to ${head} \\(only what it reaches\\)\n`));
    const tree = git(dir, ['rev-parse', `${head}^{tree}`]).trim();
    const notCommit = run(['export', 'plan', '--since', tree]);
    assert.equal(notCommit.status, 2);
    assert.match(notCommit.stderr, /--since must be a commit id of this repository/);
    // The plan checks --columns as the export does.
    const noColumn = run(['export', 'plan', '--columns', 'events:nope']);
    assert.equal(noColumn.status, 2);
    assert.match(noColumn.stderr, /table events has no column "nope" \[invalid_argument\]/);
    const notExported = run(['export', 'plan', '--tables', 'events', '--columns', 'commits:ref']);
    assert.equal(notExported.status, 2);
    assert.match(notExported.stderr, /--columns names commits, which is not exported/);
    // A table filtered twice must meet both filters.
    const both = run(['export', 'plan', '--where', 'events=ns = "ops" or ns = "shop"', '--where', 'events=kind = "deploy"']);
    assert.equal(both.stdout.trim().split('\n').at(-1), 'where events: (ns = "ops" or ns = "shop") and kind = "deploy"');
    // A table named twice is a usage mistake, not an internal error.
    const twice = run(['export', 'sqlite', '--out', join(newDir(), 'twice.sqlite'), '--tables', 'events,jobs,events']);
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /--tables names events twice \[invalid_argument\]/);
    // --columns naming a table again adds its columns.
    const narrowed = join(newDir(), 'both.sqlite');
    const columns = run([
      'export',
      'sqlite',
      '--out',
      narrowed,
      '--tables',
      'events',
      '--columns',
      'events:ns',
      '--columns',
      'events:kind',
    ]);
    assert.equal(columns.status, 0, columns.stderr);
    assert.equal(sql(narrowed, "select group_concat(name) from pragma_table_info('events')"), 'id,ns,kind,commit_id');
    const none = run(['export', 'sqlite', '--out', join(newDir(), 'none.sqlite'), '--columns', 'events:']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /--columns events: names no column of events \[invalid_argument\]/);
  });
});
