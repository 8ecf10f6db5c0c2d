/**
 * The staging area between extractors and a SQLite output: a temporary SQLite file. Extractors
 * append rows in whatever order their refs finish; the sink copies each table into the output
 * sorted by its primary key (SQLite's external sorter) in one statement. Memory stays at
 * SQLite's page cache whatever the repository's size, and the order rows arrive in (threads,
 * scheduling) cannot change a byte of the output. Parquet outputs stage sorted runs instead
 * (sorted-runs.ts).
 */
import { readdirSync, rmSync, truncateSync } from 'node:fs';
import { rm, truncate } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { StagingRef } from '../engine/scheduler/tasks.js';
import type { Row, TableDef } from './tables.js';

/** Page size of every SQLite file an export writes: staging, shards, side files and the output. */
export const PAGE_SIZE = 16_384;

/**
 * Opens a SQLite file that only this export writes, with no rollback journal and no syncs: a
 * crash leaves a temporary file that the next export discards, never a journal to replay.
 * better-sqlite3 opens connections in SQLite's defensive mode, which ignores `journal_mode = OFF`
 * without an error (the pragma answers `delete`): it is lifted for that one pragma. Until it was,
 * every staging batch and shard commit created and deleted a journal file (~90 per 100k-event
 * export).
 *
 * A new file gets pages of `PAGE_SIZE` (an existing one keeps its own): a quarter of the pages to
 * write, balance and copy of SQLite's default 4 KiB. Exports 8-13% faster at 100k and 1M events
 * (docs/decisions/0009).
 */
export function openUnjournaled(path: string): Database.Database {
  const db = new Database(path);
  db.pragma(`page_size = ${PAGE_SIZE}`);
  db.unsafeMode(true);
  db.pragma('journal_mode = OFF');
  db.unsafeMode(false);
  db.pragma('synchronous = OFF');
  return db;
}

/**
 * Runs `setup` on a connection just opened and closes the connection if it fails: its first
 * writes are where a full disk shows, and a file left open keeps its space after removal.
 */
export function closingOnFailure(db: Database.Database, setup: () => void): void {
  try {
    setup();
  } catch (err) {
    db.close();
    throw err;
  }
}

const INSERT_BATCH = 5000;
/**
 * Shards read in place (attached). SQLite attaches at most 10 files, and a sink attaches its
 * output too; shards past this many are copied into the main file instead.
 */
const ATTACHED_SHARDS = 8;

const unionOf = (table: string, schemas: readonly string[]) =>
  schemas.length === 1
    ? `${schemas[0]}."${table}"`
    : `(${schemas.map((schema) => `SELECT * FROM ${schema}."${table}"`).join(' UNION ALL ')})`;

/** The tables a schema of `db` (main or attached) holds. */
function tablesOf(db: Database.Database, schema: string): Set<string> {
  const rows = db.prepare(`SELECT name FROM ${schema}.sqlite_master WHERE type = 'table'`).all() as Array<{ name: string }>;
  return new Set(rows.map((r) => r.name));
}

/** A staging area attached to another database: each table's SQL source, and the way out. */
export interface AttachedStaging {
  source(table: string): string;
  /** Detaches the files (before they are removed). */
  detach(): void;
}

/**
 * Attaches a staging area and its shards to another database (`st`, `st0`, `st1`, …), so that
 * database can be written from the staged rows in one statement; they are only read.
 */
export function attachStaging(db: Database.Database, view: StagingRef): AttachedStaging {
  const schemas = ['st', ...view.shards.map((_, i) => `st${i}`)];
  for (const [i, path] of [view.path, ...view.shards].entries()) {
    db.prepare(`ATTACH DATABASE ? AS ${schemas[i]}`).run(path);
    db.pragma(`${schemas[i]}.cache_size = ${i === 0 ? -8192 : -1024}`);
  }
  const held = schemas.map((schema) => tablesOf(db, schema));
  return {
    source: (table) =>
      unionOf(
        table,
        schemas.filter((_, i) => held[i]?.has(table)),
      ),
    detach: () => {
      for (const schema of schemas) db.exec(`DETACH DATABASE ${schema}`);
    },
  };
}

/**
 * Where an export's rows wait between extraction and the sinks: `Staging` (a SQLite file, read
 * by SQL into a SQLite output) or `RunStaging` (sorted runs, merged into Parquet datasets).
 */
export interface StagingArea {
  readonly path: string;
  /** What a worker's shard of this area is: `<path>-<thread>.sqlite`, or runs under `<path>-<thread>`. */
  readonly format: 'sqlite' | 'runs';
  create(def: TableDef): void;
  insert(table: string, row: Row): void;
  /** Makes every row written so far readable by other connections and threads. */
  flushAll(): void;
  /** Counts the rows of workers' shards (as their tasks name them) as this area's. */
  adopt(shards: readonly string[]): void;
  view(): StagingRef;
  close(): void;
  closeInBackground(): Promise<void>;
}

export class Staging implements StagingArea {
  readonly format = 'sqlite';
  readonly db: Database.Database;
  /** Per table: writes one row's values with the prepared INSERT. */
  private readonly inserts = new Map<string, (row: Row) => void>();
  private readonly defs = new Map<string, TableDef>();
  /** Rows written in the open transaction (committed every INSERT_BATCH rows). */
  private uncommitted = 0;
  /** Shards read in place by readers (`attachStaging`), in adoption order. */
  private readonly attached: string[] = [];

  /**
   * Creates a staging file. Other connections, in this thread or another, may read the file
   * while this one stays open: it holds no lock between transactions.
   */
  constructor(readonly path: string) {
    rmSync(path, { force: true });
    this.db = openUnjournaled(path);
    this.db.pragma('cache_size = -8192');
    this.db.pragma('temp_store = FILE');
    // Sorting a large table must not grow with it: one sorter thread, SQLite's heap kept small.
    this.db.pragma('threads = 0');
    this.db.pragma('soft_heap_limit = 67108864');
  }

  /** What readers in other threads (`attachStaging`) need, once every row is committed. */
  view(): StagingRef {
    this.flushAll();
    return { path: this.path, tables: [...this.defs.keys()], shards: [...this.attached] };
  }

  /** Creates the staging table for a (full) table definition. */
  create(def: TableDef): void {
    const names = def.columns.map((col) => `"${col.name}"`);
    // A plain table: rows are appended as they come (cheap at any size); readers sort with
    // SQLite's external sorter, which keeps memory bounded.
    this.db.exec(`CREATE TABLE "${def.name}" (${names.join(', ')})`);
    const insert = this.db.prepare(`INSERT INTO "${def.name}" VALUES (${names.map(() => '?').join(', ')})`);
    const columns = def.columns.map((col) => col.name);
    const values: Array<string | number | null> = new Array(columns.length);
    this.inserts.set(def.name, (row) => {
      for (let i = 0; i < columns.length; i++) values[i] = row[columns[i] as string] ?? null;
      insert.run(values);
    });
    this.defs.set(def.name, def);
  }

  /**
   * Writes a row at once, inside a transaction committed every INSERT_BATCH rows: rows are not
   * queued in JavaScript, so they die young instead of filling the old generation of the heap.
   */
  insert(table: string, row: Row): void {
    if (this.uncommitted === 0) this.db.exec('BEGIN');
    (this.inserts.get(table) as (row: Row) => void)(row);
    if (++this.uncommitted >= INSERT_BATCH) this.flushAll();
  }

  /** Commits the rows written so far (before another connection reads the file). */
  flushAll(): void {
    if (this.uncommitted === 0) return;
    this.db.exec('COMMIT');
    this.uncommitted = 0;
  }

  /**
   * Takes in the shards written by workers (staging files named `<path>-<thread>.sqlite`
   * with tables of the same names and columns): their rows count as this area's rows from now
   * on, read in place by `attachStaging` — no row is copied, none crosses into JavaScript.
   */
  adopt(shardPaths: readonly string[]): void {
    this.flushAll();
    for (const [i, path] of shardPaths.entries()) {
      if (i < ATTACHED_SHARDS) {
        this.attached.push(path);
        continue;
      }
      this.db.prepare('ATTACH DATABASE ? AS extra').run(path);
      try {
        const present = tablesOf(this.db, 'extra');
        for (const table of this.defs.keys())
          if (present.has(table)) this.db.exec(`INSERT INTO main."${table}" SELECT * FROM extra."${table}"`);
      } finally {
        this.db.exec('DETACH DATABASE extra');
      }
    }
  }

  /** Closes and removes the staging file and every shard written for it. */
  close(): void {
    if (this.db.open) this.db.close();
    rmSync(this.path, { force: true });
    for (const shard of this.shardFiles()) {
      // Emptied first: the worker that wrote it may still hold it open, and a removed file that
      // is still open keeps its disk space.
      truncateSync(shard);
      rmSync(shard, { force: true });
    }
  }

  /**
   * Closes now and removes the files on libuv's threads, while the export finishes its output
   * (hundreds of MB at 1M events: ~0.2 s of unlinking that would otherwise wait in the serial
   * tail). Settles once every file is gone.
   */
  async closeInBackground(): Promise<void> {
    if (this.db.open) this.db.close();
    const shards = this.shardFiles();
    await Promise.all([
      rm(this.path, { force: true }),
      ...shards.map(async (shard) => {
        await truncate(shard);
        await rm(shard, { force: true });
      }),
    ]);
  }

  /** The shard files written for this staging area (`<path>-<thread>.sqlite`). */
  private shardFiles(): string[] {
    const prefix = `${basename(this.path)}-`;
    return readdirSync(dirname(this.path))
      .filter((name) => name.startsWith(prefix) && name.endsWith('.sqlite'))
      .map((name) => join(dirname(this.path), name));
  }
}
