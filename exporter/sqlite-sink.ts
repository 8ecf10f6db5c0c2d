/**
 * The SQLite sink: STRICT tables from the table definitions, NOT NULL where a column is not
 * optional, indexes on join keys, rows copied in primary-key order from the staging area,
 * `PRAGMA user_version` = the exporter version (major*1e6 + minor*1e3 + patch), `PRAGMA
 * application_id` = EXPORT_APPLICATION_ID (what marks the file as an export's). Upserts on the
 * primary key, so re-exporting an overlapping window never duplicates a row. Large tables can be
 * written in files of their own, side by side, and moved into the output as they are.
 */
import type Database from 'better-sqlite3';
import type { StagingRef } from '../engine/scheduler/tasks.js';
import { type AttachedStaging, attachStaging, closingOnFailure, openUnjournaled } from './staging.js';
import type { TableDef } from './tables.js';

const SQL_TYPE = { text: 'TEXT', json: 'TEXT', integer: 'INTEGER', timestamp: 'INTEGER' } as const;

/**
 * "GATO" in ASCII, SQLite's place for naming a file's format: an export without an
 * `export_info` table (`--tables messages`) is still known as one, and may be replaced.
 */
export const EXPORT_APPLICATION_ID = 0x4741544f;

export function userVersion(version: string): number {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  return major * 1_000_000 + minor * 1000 + patch;
}

export class SqliteSink {
  private readonly db: Database.Database;
  private staging: AttachedStaging | undefined;

  /** Opens (or creates) a SQLite file to write; `version` (the output's) sets `user_version` and `application_id`. */
  constructor(path: string, version?: string) {
    // The file is a private temporary until it is renamed into place: a crash leaves a
    // `.partial` that the next export discards.
    const db = openUnjournaled(path);
    this.db = db;
    closingOnFailure(db, () => {
      db.pragma('locking_mode = EXCLUSIVE');
      // Also the sorter's in-memory run size: two workers writing tables side by side hold two.
      // 8 MiB instead of 16 took ~50 MiB off a 1M-event export's peak at the same speed.
      db.pragma('cache_size = -8192');
      if (version !== undefined) {
        db.pragma(`user_version = ${userVersion(version)}`);
        db.pragma(`application_id = ${EXPORT_APPLICATION_ID}`);
      }
    });
  }

  /**
   * Creates the table when missing, with its indexes unless `withIndexes` is false (a table about
   * to be bulk-filled gets them after its rows: see `createIndexes`); `replace` empties it first
   * (snapshot tables).
   */
  prepare(def: TableDef, replace: boolean, withIndexes = true): void {
    const key = def.columns[0]?.name as string;
    const columns = def.columns.map(
      (col) => `"${col.name}" ${SQL_TYPE[col.type]}${col.name === key ? ' PRIMARY KEY' : col.nullable ? '' : ' NOT NULL'}`,
    );
    this.db.exec(`CREATE TABLE IF NOT EXISTS "${def.name}" (${columns.join(', ')}) STRICT`);
    if (withIndexes) this.createIndexes(def);
    if (replace) this.db.exec(`DELETE FROM "${def.name}"`);
  }

  /**
   * Creates the table's secondary indexes when missing. Built from a filled table they cost
   * SQLite one sort each; present while the rows go in, every row inserts into each of them at a
   * random place, which misses the page cache once an index outgrows it (1M commits: 2.3 s
   * filled with its indexes, 1.25 s filled and then indexed).
   */
  createIndexes(def: TableDef): void {
    for (const index of def.indexes ?? []) {
      if (!index.every((name) => def.columns.some((col) => col.name === name))) continue;
      this.db.exec(
        `CREATE INDEX IF NOT EXISTS "${def.name}_${index.join('_')}" ON "${def.name}" (${index.map((n) => `"${n}"`).join(', ')})`,
      );
    }
  }

  /** Reads staged rows from this staging area (attached; only read) from now on. */
  attach(view: StagingRef): this {
    this.staging = attachStaging(this.db, view);
    return this;
  }

  /** Stops reading from the staging area attached (its files may then be removed). */
  detach(): void {
    this.staging?.detach();
    this.staging = undefined;
  }

  /**
   * Writes a staged table into this file in key order: SQLite sorts and inserts in one
   * statement. `upsert` when the table may already hold some of the rows (incremental exports).
   * Returns the table's row count.
   */
  fill(def: TableDef, upsert: boolean): number {
    if (!this.staging) throw new Error('SqliteSink.fill before attach');
    const names = def.columns.map((col) => `"${col.name}"`);
    const key = names[0] as string;
    const updates = names.slice(1).map((n) => `${n} = excluded.${n}`);
    const conflict = !upsert
      ? ''
      : updates.length > 0
        ? ` ON CONFLICT(${key}) DO UPDATE SET ${updates.join(', ')}`
        : ` ON CONFLICT(${key}) DO NOTHING`;
    this.db.exec(
      `INSERT INTO main."${def.name}" (${names.join(', ')}) SELECT ${names.join(', ')} FROM ${this.staging.source(def.name)} WHERE true ORDER BY ${key}${conflict}`,
    );
    return (this.db.prepare(`SELECT count(*) AS n FROM main."${def.name}"`).get() as { n: number }).n;
  }

  /**
   * Moves in a table written in another file with the same definition (this one's table empty):
   * SQLite's transfer optimisation copies its records and index entries in order, as they are,
   * without sorting or re-encoding anything.
   */
  transfer(from: string, table: string): void {
    this.db.prepare('ATTACH DATABASE ? AS side').run(from);
    try {
      this.db.exec(`INSERT INTO main."${table}" SELECT * FROM side."${table}"`);
    } finally {
      this.db.exec('DETACH DATABASE side');
    }
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Writes one staged table into `path` (created there first with `create`; otherwise prepared
 * without its indexes), then indexes it: what a worker does for one large table while others
 * are written alongside. Returns the row count.
 */
export function writeSqliteTable(path: string, view: StagingRef, def: TableDef, create: boolean): number {
  const sink = new SqliteSink(path);
  try {
    if (create) sink.prepare(def, false, false);
    const rows = sink.attach(view).fill(def, false);
    sink.createIndexes(def);
    return rows;
  } finally {
    sink.close();
  }
}
