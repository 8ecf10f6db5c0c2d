/**
 * The Parquet sink: one dataset per table under `<out>/<table>/`, Hive partitions for `events`
 * and `messages` (`day=YYYY-MM-DD`, the UTC day of `ts`) and `state_nodes` (`state_ref=<sha>`),
 * ZSTD (parquet-wasm's default level: 0.8 has no level setting), dictionary encoding (except for
 * columns unique per row), typed columns (text and JSON as UTF-8 strings, integers as
 * INT64, times as millisecond timestamps). Rows come from the staging area in primary-key order,
 * `batchSize` at a time, one file per batch (`part-00000.parquet`, ...), so memory is bounded by
 * the batch.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import type { Staging } from './staging.js';
import type { Row, TableDef } from './tables.js';

function arrowType(type: TableDef['columns'][number]['type']): arrow.DataType {
  switch (type) {
    case 'integer':
      return new arrow.Int64();
    case 'timestamp':
      return new arrow.TimestampMillisecond();
    default:
      return new arrow.Utf8();
  }
}

function columnValues(rows: readonly Row[], name: string, type: TableDef['columns'][number]['type']): unknown[] {
  return rows.map((row) => {
    const value = row[name];
    if (value === null || value === undefined) return null;
    if (type === 'integer') return Number(value);
    if (type === 'timestamp') return Number(value) * 1000;
    return String(value);
  });
}

/**
 * Columns whose values are unique per row (ids, messages, payloads) gain nothing from a
 * dictionary but pay for building one; every other column is dictionary-encoded.
 */
const UNIQUE = new Set(['id', 'message', 'payload', 'trailers', 'shape', 'manifest', 'commit_id', 'parent_id', 'ulid', 'digest', 'path']);

/** Fresh properties per file: parquet-wasm takes ownership of them when writing. */
function writerProperties(def: TableDef): parquet.WriterProperties {
  let builder = new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setDictionaryEnabled(true)
    .setMaxRowGroupSize(64 * 1024)
    .setCreatedBy('gatos-exporter');
  for (const column of def.columns) if (UNIQUE.has(column.name)) builder = builder.setColumnDictionaryEnabled(column.name, false);
  return builder.build();
}

/** An INT64 or millisecond-timestamp column straight from the values (nulls kept). */
function int64Vector(values: ReadonlyArray<number | null>, type: arrow.Int64 | arrow.TimestampMillisecond): arrow.Vector {
  const length = values.length;
  const data = new BigInt64Array(length);
  let nullCount = 0;
  let nullBitmap: Uint8Array | undefined;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      nullCount++;
      nullBitmap ??= new Uint8Array((length + 7) >> 3).fill(0xff);
      (nullBitmap[i >> 3] as number) &= ~(1 << (i & 7));
    } else data[i] = BigInt(value);
  }
  // makeData's overloads cannot name "Int64 or timestamp"; the props are right for both.
  const make = arrow.makeData as unknown as (props: Record<string, unknown>) => arrow.Data;
  return arrow.makeVector(make({ type, length, nullCount, data, ...(nullBitmap ? { nullBitmap } : {}) }));
}

/** A UTF-8 column built in one buffer (much faster than Arrow's per-value builder). */
function utf8Vector(values: ReadonlyArray<string | null>): arrow.Vector {
  const length = values.length;
  const valueOffsets = new Int32Array(length + 1);
  let total = 0;
  let nullCount = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === null || value === undefined) nullCount++;
    else total += Buffer.byteLength(value);
    valueOffsets[i + 1] = total;
  }
  const data = Buffer.allocUnsafe(total);
  let at = 0;
  for (const value of values) if (value !== null && value !== undefined) at += data.write(value, at);
  let nullBitmap: Uint8Array | undefined;
  if (nullCount > 0) {
    nullBitmap = new Uint8Array((length + 7) >> 3);
    for (let i = 0; i < length; i++) if (values[i] !== null && values[i] !== undefined) (nullBitmap[i >> 3] as number) |= 1 << (i & 7);
  }
  return arrow.makeVector(
    arrow.makeData({
      type: new arrow.Utf8(),
      length,
      nullCount,
      valueOffsets,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      ...(nullBitmap ? { nullBitmap } : {}),
    }),
  );
}

/** Encodes rows (one table, one partition) as a Parquet file. */
export function encodeParquet(def: TableDef, rows: readonly Row[]): Uint8Array {
  const columns: Record<string, arrow.Vector> = {};
  for (const column of def.columns) {
    const values = columnValues(rows, column.name, column.type);
    const type = arrowType(column.type);
    columns[column.name] =
      type instanceof arrow.Utf8
        ? utf8Vector(values as Array<string | null>)
        : int64Vector(values as Array<number | null>, type as arrow.Int64);
  }
  const table = new arrow.Table(columns);
  const wasmTable = parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
  return parquet.writeParquet(wasmTable, writerProperties(def));
}

const PARTITION_SQL: Record<string, string> = { day: "strftime('%Y-%m-%d', \"ts\", 'unixepoch')", state_ref: '"state_ref"' };

/**
 * Writes a staged table as a dataset: each partition in order, each in key order, one file per
 * `batchSize` rows. Returns the files (relative to `out`) and the row count.
 */
export function writeParquetTable(out: string, def: TableDef, staging: Staging, batchSize: number): { files: string[]; rows: number } {
  const files: string[] = [];
  let rows = 0;
  const partitionSql = def.partition ? PARTITION_SQL[def.partition] : undefined;
  const partitions = partitionSql ? staging.distinct(def.name, partitionSql) : [];
  const plan =
    partitionSql && partitions.length > 0
      ? partitions.map((value) => ({ dir: join(def.name, `${def.partition}=${value}`), where: { sql: partitionSql, value } }))
      : [{ dir: def.name, where: undefined }];
  for (const { dir, where } of plan) {
    mkdirSync(join(out, dir), { recursive: true });
    let part = 0;
    for (const batch of staging.ordered(def, batchSize, where)) {
      const file = join(dir, `part-${String(part++).padStart(5, '0')}.parquet`);
      writeFileSync(join(out, file), encodeParquet(def, batch));
      files.push(file);
      rows += batch.length;
    }
    if (part === 0) {
      const file = join(dir, 'part-00000.parquet');
      writeFileSync(join(out, file), encodeParquet(def, []));
      files.push(file);
    }
  }
  return { files, rows };
}

/** Rows in a Parquet file, from its footer alone (for verify). */
export async function parquetRowCount(bytes: Uint8Array): Promise<number> {
  const file = await parquet.ParquetFile.fromFile(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  return file.metadata().fileMetadata().numRows();
}
