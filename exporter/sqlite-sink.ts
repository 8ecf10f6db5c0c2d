/**
 * The SQLite sink: STRICT tables from the table definitions, NOT NULL where a column is not
 * optional, indexes on join keys, rows written in primary-key order in transactions of
 * `batchSize`, `PRAGMA user_version` = the exporter version (major*1e6 + minor*1e3 + patch).
 * Upserts on the primary key, so re-exporting an overlapping window never duplicates a row.
 */
import Database from 'better-sqlite3';
import type { Row, TableDef } from './tables.js';

const SQL_TYPE = { text: 'TEXT', json: 'TEXT', integer: 'INTEGER', timestamp: 'INTEGER' } as const;

export function userVersion(version: string): number {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  return major * 1_000_000 + minor * 1000 + patch;
}

export class SqliteSink {
  private readonly db: Database.Database;

  constructor(
    path: string,
    version: string,
    private readonly batchSize = 10_000,
  ) {
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

  /** Writes rows; `upsert` when the table may already hold some of them (incremental exports). */
  write(def: TableDef, rows: readonly Row[], upsert = true): void {
    const names = def.columns.map((col) => col.name);
    const key = names[0] as string;
    const updates = names.slice(1).map((n) => `"${n}" = excluded."${n}"`);
    const conflict = !upsert
      ? ''
      : updates.length > 0
        ? ` ON CONFLICT("${key}") DO UPDATE SET ${updates.join(', ')}`
        : ` ON CONFLICT("${key}") DO NOTHING`;
    const insert = this.db.prepare(
      `INSERT INTO "${def.name}" (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')})${conflict}`,
    );
    const values: Array<string | number | null> = new Array(names.length);
    const batch = this.db.transaction((chunk: readonly Row[]) => {
      for (const row of chunk) {
        for (let i = 0; i < names.length; i++) values[i] = row[names[i] as string] ?? null;
        insert.run(values);
      }
    });
    for (let i = 0; i < rows.length; i += this.batchSize) batch(rows.slice(i, i + this.batchSize));
  }

  count(table: string): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
