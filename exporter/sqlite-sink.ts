/**
 * The SQLite sink: STRICT tables from the table definitions, NOT NULL where a column is not
 * optional, indexes on join keys, rows copied in primary-key order from the staging area, `PRAGMA user_version` = the exporter version
 * (major*1e6 + minor*1e3 + patch). Upserts on the primary key, so re-exporting an overlapping
 * window never duplicates a row.
 */
import Database from 'better-sqlite3';
import type { Staging } from './staging.js';
import type { TableDef } from './tables.js';

const SQL_TYPE = { text: 'TEXT', json: 'TEXT', integer: 'INTEGER', timestamp: 'INTEGER' } as const;

export function userVersion(version: string): number {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  return major * 1_000_000 + minor * 1000 + patch;
}

export class SqliteSink {
  private readonly db: Database.Database;

  constructor(path: string, version: string) {
    this.db = new Database(path);
    // The file is a private temporary until it is renamed into place, so no journal and no
    // syncs: a crash leaves a `.partial` that the next export discards.
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('locking_mode = EXCLUSIVE');
    this.db.pragma('cache_size = -65536');
    this.db.pragma(`user_version = ${userVersion(version)}`);
  }

  /** Creates the table (and its indexes) when missing; `replace` empties it first (snapshot tables). */
  prepare(def: TableDef, replace: boolean): void {
    const key = def.columns[0]?.name as string;
    const columns = def.columns.map(
      (col) => `"${col.name}" ${SQL_TYPE[col.type]}${col.name === key ? ' PRIMARY KEY' : col.nullable ? '' : ' NOT NULL'}`,
    );
    this.db.exec(`CREATE TABLE IF NOT EXISTS "${def.name}" (${columns.join(', ')}) STRICT`);
    for (const index of def.indexes ?? []) {
      if (!index.every((name) => def.columns.some((col) => col.name === name))) continue;
      this.db.exec(
        `CREATE INDEX IF NOT EXISTS "${def.name}_${index.join('_')}" ON "${def.name}" (${index.map((n) => `"${n}"`).join(', ')})`,
      );
    }
    if (replace) this.db.exec(`DELETE FROM "${def.name}"`);
  }

  /**
   * Copies a staged table in key order into this file, through the staging connection (SQLite
   * does the ordering and the inserts in one statement). `upsert` when the table may already
   * hold some of the rows (incremental exports). Call after `close()`: the file is attached.
   */
  static copy(staging: Staging, path: string, def: TableDef, upsert: boolean): number {
    const names = def.columns.map((col) => `"${col.name}"`);
    const key = names[0] as string;
    const updates = names.slice(1).map((n) => `${n} = excluded.${n}`);
    const conflict = !upsert
      ? ''
      : updates.length > 0
        ? ` ON CONFLICT(${key}) DO UPDATE SET ${updates.join(', ')}`
        : ` ON CONFLICT(${key}) DO NOTHING`;
    staging.db.prepare('ATTACH DATABASE ? AS out').run(path);
    try {
      staging.db.pragma('out.journal_mode = OFF');
      staging.db.pragma('out.synchronous = OFF');
      staging.db.exec(
        `INSERT INTO out."${def.name}" (${names.join(', ')}) SELECT ${names.join(', ')} FROM ${staging.source(def.name)} WHERE true ORDER BY ${key}${conflict}`,
      );
      return (staging.db.prepare(`SELECT count(*) AS n FROM out."${def.name}"`).get() as { n: number }).n;
    } finally {
      staging.db.exec('DETACH DATABASE out');
    }
  }

  close(): void {
    this.db.close();
  }
}
