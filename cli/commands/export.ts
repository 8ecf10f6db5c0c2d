import { flatten, type Predicate } from '../../dsl/ast.js';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { findGitDir, openRepository, type Repository, storedObjectBytes } from '../../engine/git/repository.js';
import { clockFromEnv } from '../../engine/ledger/clock.js';
import { ComputePool, parseThreads } from '../../engine/scheduler/pool.js';
import type { ExportOptions, ExportProgress } from '../../exporter/export.js';
import { type Command, type CommandContext, intFlag, requiredFlag, stringFlag } from '../command.js';
import { startHeartbeat } from '../heartbeat.js';

const USAGE = [
  'usage: gatos export --format sqlite|parquet --out PATH [--tables t1,t2] [--columns table:c1,c2]... [--where table=EXPR]...',
  '                    [--since SHA] [--until SHA] [--state NS] [--full] [--batch-size N] [--threads N] [--json]',
  '       gatos export sqlite|parquet --out PATH ...',
  '       gatos export plan [--out PATH] [--tables ...] [--where table=EXPR]... [--since SHA] [--until SHA] [--json]',
  '           what would be read and what is pruned, and why; with --out, what continuing the export there skips',
  '       gatos export verify PATH [--repo R [--deep]] [--threads N] [--json]   exit 0 valid, 1 invalid (reason codes),',
  '           2 unusable; files are hashed on N worker threads (default: one per CPU, none when R is a',
  '           small repository, as for an export; 1 = none)',
  '           --deep exports the same slice again from R and compares the content',
  '',
  '  Tables: commits, events, messages, state_nodes, pointers, jobs, governance_proposals,',
  '  governance_approvals, governance_grants, governance_revocations, export_info.',
  "  --state NS binds the export to the namespace's checkpoint (Explorer-Root with its Fold-Root).",
  '  SQLite: PATH is one file; an existing export there made with the same filters is continued from',
  '  the journal heads it recorded (--full: start over). Parquet: PATH is a directory of Hive-partitioned',
  '  datasets, rewritten whole, one file per --batch-size rows (default 50000) or 4 MiB of column data.',
  '  --threads N: journals and topics read, large tables written, on N worker threads',
  '  (default: one per CPU, none for a repository with under 8 MiB of objects; 1 = no worker at all).',
  '  Writes PATH, PATH.explorer-root.txt and, last, PATH.manifest.json. Progress goes to stderr: a bar',
  '  on a terminal, export.progress JSON lines with --json (rows, bytes, rate, percent, eta_s; repeated',
  '  every 10 s while a step runs). PATH.lock keeps a second export off the same PATH (export_locked);',
  '  a PATH that holds anything but an earlier export is refused (output_exists).',
  '  Ctrl-C (SIGTERM, SIGHUP) ends cleanly: temporary files removed, an earlier export at PATH left as it was (cancelled).',
  '',
  '  EXPR: ns = "shop" and ts >= 2025-01-01 and kind in ("a", "b") and payload.n > 3 (also not, or,',
  '  parentheses), or JSON: {"ns": "shop", "ts": {"gte": "2025-01-01"}}. A filter that cannot be',
  '  evaluated exactly is UNSUPPORTED_FILTER (exit 2), audited under refs/gatos/audit/export/.',
].join('\n');

function list(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

async function whereFlag(ctx: CommandContext): Promise<Map<string, Predicate>> {
  const map = new Map<string, Predicate>();
  const specs = (ctx.values.where as string[] | undefined) ?? [];
  if (specs.length === 0) return map;
  const { parseFilter } = await import('../../dsl/parse.js');
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new GatosError('usage', `--where takes table=EXPR, got ${JSON.stringify(spec)}`);
    const table = spec.slice(0, eq).trim();
    const predicate = parseFilter(spec.slice(eq + 1));
    // A table filtered again must meet both: `--where events=A --where events=B` is `A and B`.
    const earlier = map.get(table);
    map.set(table, earlier ? flatten({ kind: 'and', args: [earlier, predicate] }) : predicate);
  }
  return map;
}

/** `--format` (or `fallback` when absent): sqlite or parquet. */
function formatFlag(ctx: CommandContext, fallback?: 'sqlite'): 'sqlite' | 'parquet' {
  const format = stringFlag(ctx, 'format') ?? fallback;
  if (format !== 'sqlite' && format !== 'parquet') throw new GatosError('usage', `--format must be sqlite or parquet\n\n${USAGE}`);
  return format;
}

/** What an export and its plan both take from the flags: which rows are exported, and whether anew. */
async function selectionFlags(
  ctx: CommandContext,
): Promise<Pick<ExportOptions, 'tables' | 'columns' | 'where' | 'since' | 'until' | 'stateNs' | 'full'>> {
  const tables = list(stringFlag(ctx, 'tables'));
  const state = stringFlag(ctx, 'state');
  const since = stringFlag(ctx, 'since');
  const until = stringFlag(ctx, 'until');
  return {
    columns: columnsFlag(ctx),
    where: await whereFlag(ctx),
    full: ctx.values.full === true,
    ...(tables ? { tables } : {}),
    ...(state !== undefined ? { stateNs: state } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

/** How often a JSON progress record is repeated while nothing new is reported (a long table). */
const HEARTBEAT_MS = 10_000;
/** What ends an export cleanly: Ctrl-C, a service manager's stop, a terminal (or ssh session) closed. */
const CANCEL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * `export.progress` records on stderr (JSON lines with --json, a redrawn bar on a TTY): every
 * few seconds while rows are read (step `extract`: rows, bytes of the objects read, rows/s,
 * `percent` and `eta_s` of the reading), per table written (rows, rows/s since reading ended),
 * and with --json the last record again every 10 s while nothing new is reported — from a
 * thread of its own (cli/heartbeat.ts), since the longest silent steps block this one. The
 * estimate compares the objects read with those the repository holds: an export reads nearly
 * all of a GATOS repository's objects (one that also holds a large code history ends early).
 * With neither --json nor a terminal there is no `report`, and the export does no reporting work.
 */
function progressReporter(ctx: CommandContext): { report?: (progress: ExportProgress) => void; stop: () => void } {
  const json = ctx.out.json === true;
  if (!json && !process.stderr.isTTY) return { stop: () => undefined };
  const started = performance.now();
  const heartbeat = json ? startHeartbeat(2, HEARTBEAT_MS) : undefined;
  // Whoever read the progress went away (`... --json 2>&1 | head`): the reports end, the export
  // goes on (the failed write's error would otherwise end the process, temporary files and all).
  let unread = false;
  process.stderr.on('error', () => {
    unread = true;
    heartbeat?.stop();
  });
  // Tables are written once reading is over: their rate counts from then.
  let readDoneAt: number | undefined;
  let drawn = false;
  const report = (progress: ExportProgress) => {
    if (unread) return;
    const now = performance.now();
    const elapsed = Math.max((now - started) / 1000, 0.001);
    const { step, rows, objects, bytes, totalObjects, done } = progress;
    if (done) readDoneAt = now;
    const stepStarted = step === 'extract' || readDoneAt === undefined ? started : readDoneAt;
    const fraction = done ? 1 : objects !== undefined && totalObjects ? Math.min(objects / totalObjects, 0.99) : undefined;
    const record = {
      event: 'export.progress',
      step,
      rows,
      ...(bytes !== undefined ? { bytes } : {}),
      elapsed_ms: Math.round(elapsed * 1000),
      rate: Math.round(rows / Math.max((now - stepStarted) / 1000, 0.001)),
      ...(fraction !== undefined
        ? { percent: Math.floor(fraction * 100), eta_s: fraction > 0 ? Math.round((elapsed * (1 - fraction)) / fraction) : null }
        : {}),
    };
    if (heartbeat) {
      process.stderr.write(`${JSON.stringify(record)}\n`);
      const epoch = (t: number) => performance.timeOrigin + t;
      heartbeat.beat({ record, rows, started: epoch(started), stepStarted: epoch(stepStarted) });
      return;
    }
    const width = 24;
    const bar =
      record.percent !== undefined
        ? `[${'#'.repeat(Math.round((record.percent / 100) * width)).padEnd(width, '-')}] ${record.percent}% `
        : '';
    const size = bytes !== undefined ? ` ${(bytes / 1e6).toFixed(1)} MB,` : '';
    const eta = record.eta_s !== undefined && record.eta_s !== null ? `, ETA ${record.eta_s} s` : '';
    // A table's rate counts from the end of reading, which says little on a line of its own
    // (a 3-row table written after the large ones showed "2 rows/s"): tables show their rows.
    const line = step === 'extract' ? `${step} ${bar}${rows} rows,${size} ${record.rate} rows/s${eta}` : `table ${step}: ${rows} rows`;
    process.stderr.write(`\rexport: ${line}\x1b[K`);
    drawn = true;
  };
  return {
    report,
    /** Ends the reports (the bar's line too); safe to call again. */
    stop: () => {
      heartbeat?.stop();
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

function columnsFlag(ctx: CommandContext): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const spec of (ctx.values.columns as string[] | undefined) ?? []) {
    const colon = spec.indexOf(':');
    if (colon <= 0) throw new GatosError('usage', `--columns takes table:c1,c2, got ${JSON.stringify(spec)}`);
    // A table named again adds columns: `--columns events:ns --columns events:kind` keeps both.
    const table = spec.slice(0, colon);
    const columns = list(spec.slice(colon + 1)) ?? [];
    // An empty list (`events:`, a variable left unset in a script) would quietly keep only the keys.
    if (columns.length === 0) throw new GatosError('invalid_argument', `--columns ${spec} names no column of ${table}`);
    map.set(table, [...new Set([...(map.get(table) ?? []), ...columns])]);
  }
  return map;
}

/**
 * The export's worker pool (none with `--threads 1`: one thread runs everything itself, since
 * a single worker would only add a hand-off (measured: 100k events 4.3 s here vs 5.5 s through
 * one worker). Export tasks are small batches, so a tight heap per worker keeps a large export's
 * memory flat.)
 */
function exportPool(threads: number): ComputePool {
  return new ComputePool({ threads, maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 8 });
}

/**
 * Below this much stored object data, an export runs in the calling thread unless `--threads`
 * says otherwise: it is over before worker threads would pay for their start. Measured on the
 * 2-core machine (fixtures, SQLite): 2k events (1.4 MB of packs) 255 ms in one thread against
 * 340 ms on two, 10k events (7.3 MB) 472 against 490 ms, 25k events (18 MB) 788 against 704 ms.
 */
const SMALL_REPOSITORY_BYTES = 8 << 20;

/**
 * `--threads`; by default one per CPU, or none when `repo` is a small repository (any count gives
 * the same bytes).
 */
function exportThreads(ctx: CommandContext, repo: string | undefined): number {
  const flag = stringFlag(ctx, 'threads');
  if (flag !== undefined) return parseThreads(flag);
  let small = false;
  try {
    small = repo !== undefined && storedObjectBytes(findGitDir(repo)) < SMALL_REPOSITORY_BYTES;
  } catch {
    // Not a readable repository: opening it reports that, with its own error.
  }
  return small ? 1 : parseThreads(undefined);
}

export const exportCommand: Command = {
  name: 'export',
  usage: USAGE,
  options: {
    format: { type: 'string' },
    out: { type: 'string' },
    tables: { type: 'string' },
    columns: { type: 'string', multiple: true },
    where: { type: 'string', multiple: true },
    state: { type: 'string' },
    full: { type: 'boolean' },
    deep: { type: 'boolean' },
    since: { type: 'string' },
    until: { type: 'string' },
    'batch-size': { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    const [sub, target] = ctx.positionals;
    if (sub === 'verify') {
      if (!target) throw new GatosError('usage', USAGE);
      if (ctx.values.deep === true && ctx.values.repo === undefined) throw new GatosError('usage', `--deep needs --repo\n\n${USAGE}`);
      // A dataset of many files is hashed on the pool, which a --deep export uses too: started on
      // demand, and not for the export of a small repository.
      const threads = exportThreads(ctx, ctx.values.repo !== undefined ? ctx.repo : undefined);
      let pool: ComputePool | undefined;
      const onDemand = threads === 1 ? undefined : () => (pool ??= exportPool(threads));
      let repo: Repository | undefined;
      try {
        const [{ verifyExport }] = await Promise.all([import('../../exporter/verify.js'), blake3Ready()]);
        repo = ctx.values.repo !== undefined ? openRepository(ctx.repo) : undefined;
        const result = await verifyExport(target, repo, {
          deep: ctx.values.deep === true,
          ...(repo ? { gitDir: repo.gitDir } : {}),
          ...(onDemand ? { pool: onDemand } : {}),
        });
        const lines = result.failures.map((f) => `FAIL ${f.code}: ${f.detail}`);
        ctx.out.result(
          result,
          [`${result.ok ? 'valid' : 'INVALID'} ${result.manifest} (Explorer-Root ${result.explorer_root})`, ...lines].join('\n'),
        );
        return result.ok ? 0 : 1;
      } finally {
        await pool?.close();
        repo?.close();
      }
    }
    if (sub === 'plan') {
      const [{ planExport }] = await Promise.all([import('../../exporter/export.js'), blake3Ready()]);
      const repo = openRepository(ctx.repo);
      try {
        const out = stringFlag(ctx, 'out');
        const { plan } = planExport(
          { objects: repo.objects, refs: repo.refs },
          { format: formatFlag(ctx, 'sqlite'), out: out ?? '', clock: clockFromEnv(), ...(await selectionFlags(ctx)) },
        );
        const describe = (what: string, table: 'events' | 'commits' | 'messages') =>
          plan.tables.includes(table)
            ? `${what} for ${table}: read ${plan[table].read.length}, pruned ${plan[table].pruned.length}`
            : `${what} for ${table}: none (${table} not exported)`;
        ctx.out.result(
          plan,
          [
            describe('journal refs', 'events'),
            describe('journal refs', 'commits'),
            describe('topics', 'messages'),
            ...(plan.tables.includes('messages')
              ? [`segments for messages: read ${plan.messages.segments.read.length}, pruned ${plan.messages.segments.pruned.length}`]
              : []),
            ...(plan.continues === null
              ? []
              : 'restarted_because' in plan.continues
                ? [`exports in full: ${plan.continues.restarted_because}`]
                : [
                    `continues the export at ${out}: ${plan.continues.journals_unchanged} journals and ${plan.continues.segments_unchanged} message segments unchanged since are not read`,
                  ]),
            ...(plan.window.since ? [`journal walk: after ${plan.window.since} (nothing it reaches)`] : []),
            ...(plan.window.until ? [`journal walk: up to ${plan.window.until} (only what it reaches)`] : []),
            ...Object.entries(plan.filters).map(([t, f]) => `where ${t}: ${f}`),
          ].join('\n'),
        );
        return 0;
      } finally {
        repo.close();
      }
    }
    if (sub !== undefined && sub !== 'sqlite' && sub !== 'parquet')
      throw new GatosError('usage', `unknown export command "${sub}": sqlite, parquet, plan or verify\n\n${USAGE}`);
    const format = sub ?? formatFlag(ctx);
    // The pool starts first, so the workers load their code while this thread loads the exporter.
    const threads = exportThreads(ctx, ctx.repo);
    const pool = threads === 1 ? undefined : exportPool(threads);
    const progress = progressReporter(ctx);
    // The first Ctrl-C (or SIGTERM, or SIGHUP from a closed terminal) ends the export cleanly,
    // removing its temporary files; a second one stops the process at once (the handler is gone by then).
    const cancellation = new AbortController();
    const cancel = (signal: NodeJS.Signals) => {
      // A hung-up terminal may refuse the note; the cancellation must happen regardless.
      if (signal !== 'SIGHUP') process.stderr.write('\nexport: cancelling (again to stop at once)\n');
      cancellation.abort();
    };
    for (const signal of CANCEL_SIGNALS) process.once(signal, cancel);
    let repo: Repository | undefined;
    try {
      // Loaded here, not with the CLI: the exporter is start-up that every other command would pay.
      const [{ runExport }] = await Promise.all([import('../../exporter/export.js'), blake3Ready()]);
      repo = openRepository(ctx.repo);
      const objects = repo.objects;
      const batchSize = intFlag(ctx, 'batch-size', 1);
      const manifest = await runExport(
        { objects, refs: repo.refs },
        {
          format,
          out: requiredFlag(ctx, 'out', USAGE),
          ...(await selectionFlags(ctx)),
          ...(pool ? { pool } : {}),
          // Pack indexes, read windows and worker threads are released as soon as they are done with;
          // the workers end on their own threads while this one finishes the output (awaited below).
          afterExtract: () => objects.close(),
          afterPool: () => {
            pool?.close().catch(() => undefined);
          },
          gitDir: repo.gitDir,
          clock: clockFromEnv(),
          ...(progress.report ? { onProgress: progress.report } : {}),
          signal: cancellation.signal,
          ...(batchSize !== undefined ? { batchSize } : {}),
        },
      );
      progress.stop();
      const counts = Object.entries(manifest.row_counts).map(([t, n]) => `  ${t}: ${n}`);
      ctx.out.result(
        manifest,
        [
          `exported ${format} to ${requiredFlag(ctx, 'out', USAGE)} (Explorer-Root ${manifest.explorer_root})`,
          ...(manifest.incremental ? ['continued from the export already there: only what changed since was read'] : []),
          ...(manifest.restarted_because ? [`exported in full: ${manifest.restarted_because}`] : []),
          ...counts,
        ].join('\n'),
      );
      return 0;
    } finally {
      for (const signal of CANCEL_SIGNALS) process.off(signal, cancel);
      progress.stop();
      await pool?.close();
      repo?.close();
    }
  },
};
