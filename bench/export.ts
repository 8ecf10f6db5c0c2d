/**
 * Exporter figures on a seeded 100k-event fixture (100 namespaces, plus 10k messages, a checkpoint,
 * governance and jobs): all tables to SQLite and to
 * Parquet, and to SQLite again once git has repacked the repository; the commits table beside a naive `git log | sqlite3 .import` pipeline on the same refs;
 * 2 threads beside 1 (whole CLI processes, paired rounds); verify throughput; a 1%-of-namespaces
 * `--where` beside the unfiltered export; without --quick, the peak RSS and the thread ratio of a
 * 1M-event export (three paired rounds, each run in a child process), and that export
 * again once git has repacked it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFilter } from '../dsl/parse.js';
import { openRepository } from '../engine/git/repository.js';
import { ComputePool } from '../engine/scheduler/pool.js';
import { type ExportOptions, runExport } from '../exporter/export.js';
import { verifyExport } from '../exporter/verify.js';
import { generateFixture } from '../fixtures/generate.js';
import { populatePlanes } from '../fixtures/planes.js';
import { type BenchRow, median, pairedRounds, spread } from './row.js';

const seconds = (since: number) => (performance.now() - since) / 1000;
/** What the `gatos` entry loads: the CLI's bundle when it is current (cli/load-main.ts). */
const LOAD_MAIN = fileURLToPath(new URL('../cli/load-main.js', import.meta.url));

/** A whole CLI process: wall seconds, CPU seconds of all its threads, peak RSS (MiB). */
interface CliRun {
  seconds: number;
  cpuSeconds: number;
  mib: number;
}

/**
 * Runs the CLI in a process of its own, which reports its CPU time (user + system, every thread)
 * and peak memory as it exits; throws with its stderr when it fails. The peak is the child's own
 * VmHWM, which starts afresh at exec, while getrusage's maxrss would carry the RSS of this
 * (large) bench process, from which the child was forked.
 */
function measuredCli(args: string[]): CliRun {
  const script = [
    "import { readFileSync } from 'node:fs';",
    "const peak = () => { try { return Number(/VmHWM:\\s*(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]); } catch { return process.resourceUsage().maxRSS; } };",
    `import(${JSON.stringify(LOAD_MAIN)}).then((m) => m.loadMain()).then((m) => m.main(${JSON.stringify(args)})).then((code) => { const cpu = process.cpuUsage(); process.stderr.write('RSS ' + peak() + ' CPU ' + (cpu.user + cpu.system) + '\\n'); process.exit(code); });`,
  ].join('\n');
  const started = performance.now();
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const elapsed = seconds(started);
  if (child.status !== 0) throw new Error(`gatos ${args.join(' ')} exited ${child.status}: ${child.stderr}`);
  const report = /RSS (\d+) CPU (\d+)/.exec(child.stderr);
  return {
    seconds: elapsed,
    cpuSeconds: Number(report?.[2] ?? Number.NaN) / 1e6,
    mib: Math.round(Number(report?.[1] ?? Number.NaN) / 1024),
  };
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return seconds(started);
}

/** `git log` of the journals into TSV, `.import` into sqlite3: the naive pipeline. */
function naiveCommits(gitDir: string, out: string): number {
  const started = performance.now();
  const tsv = execFileSync(
    'git',
    ['--git-dir', gitDir, 'log', '--glob=refs/gatos/journal', '--format=%H%x09%P%x09%an <%ae>%x09%ct%x09%s'],
    {
      maxBuffer: 1 << 30,
    },
  );
  writeFileSync(`${out}.tsv`, tsv);
  execFileSync('sqlite3', [
    out,
    'create table commits (id text primary key, parent_id text, author text, ts integer, message text)',
    '.mode tabs',
    `.import ${out}.tsv commits`,
  ]);
  return seconds(started);
}

export async function exporterBench(cacheDir: string, quick: boolean): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = join(cacheDir, `export-100k-${process.pid}`);
  const out = join(cacheDir, `export-out-${process.pid}`);
  const fixture = await generateFixture({ events: 100_000, seed: 21, out: dir, namespaces: 100 });
  await populatePlanes(dir, { seed: 21, messages: 10_000, jobs: 3 });
  const repo = openRepository(dir);
  const pool = new ComputePool();
  const base = (extra: Partial<ExportOptions>): ExportOptions => ({
    format: 'sqlite',
    out: `${out}/x`,
    clock: () => 0,
    full: true,
    ...extra,
  });

  const sqlite = await timed(() => runExport(repo, base({ out: `${out}/all.sqlite`, pool, gitDir: fixture.gitDir })));
  const parquet = await timed(() => runExport(repo, base({ format: 'parquet', out: `${out}/all-parquet`, pool, gitDir: fixture.gitDir })));
  rows.push({
    name: 'export: 100k events, all tables, SQLite',
    value: Number(sqlite.toFixed(2)),
    unit: 's',
    target: '<= 5 s',
    met: sqlite <= 5,
  });
  rows.push({
    name: 'export: 100k events, all tables, Parquet',
    value: Number(parquet.toFixed(2)),
    unit: 's',
    target: '<= 5 s',
    met: parquet <= 5,
  });
  // The same repository after `git repack -adf`, as gc leaves real ones: objects grouped by type
  // and age instead of walk order, some stored as deltas, so a walk's reads jump around the pack.
  const repacked = join(cacheDir, `export-100k-repacked-${process.pid}`);
  cpSync(dir, repacked, { recursive: true });
  execFileSync('git', ['-C', repacked, 'repack', '-adfq']);
  const repackedRepo = openRepository(repacked);
  const afterRepack = await timed(() =>
    runExport(repackedRepo, base({ out: `${out}/repacked.sqlite`, pool, gitDir: repackedRepo.gitDir })),
  );
  repackedRepo.close();
  rmSync(repacked, { recursive: true, force: true });
  rows.push({
    name: 'export: 100k events, all tables, SQLite, repository repacked by git (repack -adf)',
    value: Number(afterRepack.toFixed(2)),
    unit: 's',
    baseline: `as generated ${sqlite.toFixed(2)} s`,
    ratio: Number((afterRepack / sqlite).toFixed(2)),
    target: '<= 5 s',
    met: afterRepack <= 5,
  });
  // 2 threads vs 1 as users see it: whole `gatos export` processes (start-up, worker threads
  // and all), in paired rounds (nine, seven with --quick: a VM's slow minute moves one round, not
  // the median). Rounds of the same code spread over 1.3-1.9x on the 2-core VM (decision 0009,
  // session 25): the median of three moved by ~0.1 from run to run.
  const rounds = quick ? 7 : 9;
  for (const format of ['sqlite', 'parquet'] as const) {
    const threads = (n: number) => () =>
      measuredCli(['--repo', dir, 'export', format, '--out', `${out}/t${n}.${format}`, '--full', '--threads', String(n)]);
    const paired = pairedRounds(rounds, threads(1), threads(2));
    const wall = (runs: CliRun[]) => median(runs.map((run) => run.seconds)).toFixed(2);
    // CPU beside wall time: two busy workers run about as much CPU as one thread, which also
    // gets its compiler and collector threads run on the other core (decision 0009).
    const cpu = (runs: CliRun[]) => median(runs.map((run) => run.cpuSeconds)).toFixed(2);
    rows.push({
      name: `export: ${format === 'sqlite' ? 'SQLite' : 'Parquet'}, 2 threads vs 1 (whole process, 100k)`,
      value: Number(paired.ratio.toFixed(2)),
      unit: 'x',
      baseline: `median of ${rounds} paired rounds (${spread(paired.ratios)}); medians: 1 thread ${wall(paired.a)} s (CPU ${cpu(paired.a)} s), 2 threads ${wall(paired.b)} s (CPU ${cpu(paired.b)} s)`,
      target: '>= 1.5x',
      met: paired.ratio >= 1.5,
    });
  }

  const ours = await timed(() =>
    runExport(repo, base({ out: `${out}/commits.sqlite`, tables: ['commits'], pool, gitDir: fixture.gitDir })),
  );
  const naive = naiveCommits(fixture.gitDir, `${out}/naive.sqlite`);
  rows.push({
    name: 'export: commits table alone vs git log | sqlite3 .import',
    value: Number(ours.toFixed(2)),
    unit: 's',
    baseline: `naive pipeline ${naive.toFixed(2)} s`,
    ratio: Number((ours / naive).toFixed(2)),
    target: '<= 2x',
    met: ours / naive <= 2,
  });

  const verifyStarted = performance.now();
  // As `gatos export verify` runs: files hashed on the pool.
  await verifyExport(`${out}/all.sqlite`, undefined, { pool: () => pool });
  await verifyExport(`${out}/all-parquet`, undefined, { pool: () => pool });
  const bytes =
    statSync(`${out}/all.sqlite`).size +
    JSON.parse(readFileSync(`${out}/all-parquet.manifest.json`, 'utf8')).files.reduce((n: number, f: { size: number }) => n + f.size, 0);
  const verifyRate = bytes / 1e6 / seconds(verifyStarted);
  rows.push({ name: 'export verify throughput', value: Math.round(verifyRate), unit: 'MB/s', target: '>= 200', met: verifyRate >= 200 });

  const unfiltered = await timed(() =>
    runExport(repo, base({ out: `${out}/ev.sqlite`, tables: ['events'], pool, gitDir: fixture.gitDir })),
  );
  const where = new Map([['events', parseFilter('ns = "ns-50"')]]);
  const filtered = await timed(() =>
    runExport(repo, base({ out: `${out}/ev-where.sqlite`, tables: ['events'], where, pool, gitDir: fixture.gitDir })),
  );
  rows.push({
    name: 'export: --where on 1% of namespaces vs unfiltered (events)',
    value: Number((unfiltered / filtered).toFixed(1)),
    unit: 'x faster',
    baseline: `unfiltered ${unfiltered.toFixed(2)} s, filtered ${filtered.toFixed(2)} s`,
    target: '>= 10x',
    met: unfiltered / filtered >= 10,
  });
  await pool.close();
  repo.close();
  rmSync(out, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });

  if (!quick) {
    const bigDir = join(cacheDir, `export-1m-${process.pid}`);
    await generateFixture({ events: 1_000_000, seed: 22, out: bigDir });
    const peakMiB = (format: 'sqlite' | 'parquet', threads?: number): CliRun => {
      const args = ['--repo', bigDir, 'export', format, '--out', `${bigDir}-out/x.${format}`, '--full'];
      if (threads) args.push('--threads', String(threads));
      return measuredCli(args);
    };
    let asGenerated = { mib: 0, seconds: 0 };
    for (const format of ['sqlite', 'parquet'] as const) {
      // Three paired rounds: one run each moved by ±15% with the VM (2 threads 18.6-21.8 s on
      // the same fixture), enough to swing the ratio across its target.
      const paired = pairedRounds(
        3,
        () => peakMiB(format, 1),
        () => peakMiB(format),
      );
      const { a: singleRuns, b: pooledRuns } = paired;
      const pooledSeconds = median(pooledRuns.map((run) => run.seconds));
      const singleSeconds = median(singleRuns.map((run) => run.seconds));
      // Memory: the highest peak of any run.
      const pooled = Math.max(...pooledRuns.map((run) => run.mib));
      const single = Math.max(...singleRuns.map((run) => run.mib));
      if (format === 'sqlite') asGenerated = { mib: pooled, seconds: pooledSeconds };
      const name = format === 'sqlite' ? 'SQLite' : 'Parquet';
      rows.push({
        name: `export: 1M events to ${name}, ${availableParallelism()} threads vs 1 (whole process, median of 3 paired rounds)`,
        value: Number(paired.ratio.toFixed(2)),
        unit: 'x',
        baseline: `${spread(paired.ratios)}; medians: 1 thread ${singleSeconds.toFixed(1)} s, ${availableParallelism()} threads ${pooledSeconds.toFixed(1)} s`,
        target: '>= 1.5x',
        met: paired.ratio >= 1.5,
      });
      rows.push({
        name: `export: 1M events to ${name}, peak RSS (default threads; --threads 1; highest of 3 runs)`,
        value: Math.max(pooled, single),
        unit: 'MiB',
        baseline: `default threads ${pooled} MiB, --threads 1 ${single} MiB`,
        target: '<= 300',
        met: Math.max(pooled, single) <= 300,
      });
    }
    // As gc would leave it: objects grouped by type and age, some stored as deltas.
    execFileSync('git', ['-C', bigDir, 'repack', '-adfq']);
    const repackedRun = peakMiB('sqlite');
    // Deltas fill each thread's delta-base cache, which the generated pack never does.
    rows.push({
      name: 'export: 1M events to SQLite after git repack -adf, peak RSS (default threads)',
      value: repackedRun.mib,
      unit: 'MiB',
      baseline: `as generated ${asGenerated.mib} MiB; time ${repackedRun.seconds.toFixed(1)} s (as generated ${asGenerated.seconds.toFixed(1)} s)`,
      target: '<= 300',
      met: repackedRun.mib <= 300,
    });
    rmSync(bigDir, { recursive: true, force: true });
    rmSync(`${bigDir}-out`, { recursive: true, force: true });
  }
  return rows;
}
