/**
 * What an export may do at its output path.
 *
 * - It holds `<out>.lock`, created exclusively, naming the process that holds it. Two exports to
 *   one path (an overlapping cron job, a second terminal) would otherwise remove each other's
 *   temporary files and could leave a manifest that describes neither. A lock whose process is
 *   gone (a killed export) is taken over; one held on another host is never judged from here.
 * - It replaces only what an export wrote (a SQLite file is known by its application id or its
 *   `export_info` table): a path that holds anything else (a directory of the user's files
 *   given as a Parquet `--out`, a document given as a SQLite one) is refused before anything
 *   changes, since replacing it would delete it.
 */
import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { GatosError } from '../engine/errors.js';
import { EXPORT_APPLICATION_ID } from './sqlite-sink.js';
import { TABLE_NAMES } from './tables.js';

/**
 * The output path without trailing separators (`exports/repo/`, as shell completion writes a
 * directory): the files beside it are named `<out>.manifest.json`, `<out>.lock`, never
 * `exports/repo/.manifest.json`.
 */
export function outputPath(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '');
  return trimmed === '' && path !== '' ? path : trimmed;
}

/** Whether process `pid` exists on this host (EPERM: it does, owned by someone else). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a lock file says (its holder's `pid host`); a moment's grace for one just created; undefined once gone. */
function holderOf(path: string): string | undefined {
  for (let look = 0; ; look++) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (text !== '' || look === 1) return text;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/** Takes `<out>.lock` or fails with `export_locked`; returns the release (safe to call again). */
export function lockOutput(out: string): () => void {
  const path = `${out}.lock`;
  const host = hostname();
  for (;;) {
    try {
      writeFileSync(path, `${process.pid} ${host}\n`, { flag: 'wx' });
      let held = true;
      return () => {
        if (held) rmSync(path, { force: true });
        held = false;
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = holderOf(path);
    if (text === undefined) continue; // released meanwhile
    const [pidText = '', holderHost = ''] = text.split(' ');
    const pid = Number.parseInt(pidText, 10);
    // Still empty after a moment: its writer died as it created it, so it is stale.
    if (text !== '' && (holderHost !== host || alive(pid)))
      throw new GatosError(
        'export_locked',
        `another export (pid ${pidText} on ${holderHost || 'an unknown host'}) is writing ${out}; wait for it to end, or remove ${path} if it is gone`,
        { out, pid: pidText, host: holderHost },
      );
    // Left by an export that died: taken over (if another process takes it first, the loop sees its lock).
    rmSync(path, { force: true });
  }
}

/** Whether `path` is a SQLite file an export wrote: marked with its application id, or holding an `export_info` table. */
function isSqliteExport(path: string): boolean {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    if (db.pragma('application_id', { simple: true }) === EXPORT_APPLICATION_ID) return true;
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'export_info'").get() !== undefined;
  } catch {
    return false; // not a database (SQLite reads nothing until asked)
  } finally {
    db.close();
  }
}

/**
 * Fails with `output_exists` unless `out` is absent, empty (a directory or a file), or an export's output
 * (a SQLite file with an `export_info` table, or a directory of table datasets only).
 */
export function checkReplaceable(out: string): void {
  const stat = lstatSync(out, { throwIfNoEntry: false });
  if (!stat) return;
  if (stat.isDirectory() && readdirSync(out).every((name) => (TABLE_NAMES as readonly string[]).includes(name))) return;
  // An empty file holds nothing to lose (`mktemp` makes one).
  if (stat.isFile() && (stat.size === 0 || isSqliteExport(out))) return;
  throw new GatosError(
    'output_exists',
    `${out} exists and is not an export's output; an export would replace it: choose another --out, or remove it first`,
    { out },
  );
}
