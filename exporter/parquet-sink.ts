/**
 * The Parquet sink: one dataset per table under `<out>/<table>/`, Hive partitions for `events`
 * and `messages` (`day=YYYY-MM-DD`, the UTC day of `ts`) and `state_nodes` (`state_ref=<sha>`),
 * ZSTD (parquet-wasm's default level: 0.8 has no level setting), dictionary encoding (except for
 * columns unique per row), typed columns (text and JSON as UTF-8 strings, integers as
 * INT64, times as millisecond timestamps). Rows come from the staging area's sorted runs in
 * primary-key order and go straight into Arrow column buffers, one file per `batchSize` rows or
 * MAX_FILE_BYTES of column data (`part-00000.parquet`, ...), so memory is bounded by one file's
 * columns.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import type * as Arrow from 'apache-arrow';
import type * as ParquetWasm from 'parquet-wasm';
import { blake3Hex } from '../engine/codec/blake3.js';
import type { StagingRef, WrittenFile } from '../engine/scheduler/tasks.js';
import { mergedRecords, partitionOfKey, type ValueSink } from './sorted-runs.js';
import { type TableDef, tableDef } from './tables.js';

// Both are loaded by every worker that writes Parquet, so how matters: Arrow's one-file build
// loads in ~8 ms against ~55 ms for its 200 ES modules, and `require` spares Node a scan of
// parquet-wasm's 100 KB CommonJS glue for export names (~40 ms).
const require = createRequire(import.meta.url);
const arrow = require('apache-arrow/Arrow.esnext.min') as typeof Arrow;
const parquet = require('parquet-wasm') as typeof ParquetWasm;

/** `array` with room for at least `needed` items: doubled (and copied) when it has less. */
function roomFor<T extends Uint8Array | Int32Array | BigInt64Array>(array: T, needed: number, make: (length: number) => T): T {
  if (needed <= array.length) return array;
  const grown = make(Math.max(array.length * 2, needed));
  grown.set(array as never);
  return grown;
}
// Made once: `roomFor` runs for every value appended.
const bytesOf = (n: number) => new Uint8Array(n);
const int32sOf = (n: number) => new Int32Array(n);
const int64sOf = (n: number) => new BigInt64Array(n);
const bufferOf = (n: number) => Buffer.allocUnsafe(n);

/**
 * Columns whose values are unique per row (ids, messages, payloads) gain nothing from a
 * dictionary but pay for building one; every other column is dictionary-encoded.
 */
const UNIQUE = new Set([
  'id',
  'event_cid',
  'content_id',
  'message',
  'payload',
  'trailers',
  'shape',
  'manifest',
  'commit_id',
  'parent_id',
  'ulid',
  'digest',
  'path',
]);

/** Fresh properties per file: parquet-wasm takes ownership of them when writing. */
function writerProperties(def: TableDef): ParquetWasm.WriterProperties {
  let builder = new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setDictionaryEnabled(true)
    .setMaxRowGroupSize(64 * 1024)
    .setCreatedBy('gatos-exporter');
  for (const column of def.columns) if (UNIQUE.has(column.name)) builder = builder.setColumnDictionaryEnabled(column.name, false);
  return builder.build();
}

/** A validity bitmap (bit set = value present) that grows with the column. */
class Validity {
  bits = new Uint8Array(1024);
  nulls = 0;

  set(i: number, present: boolean): void {
    this.bits = roomFor(this.bits, (i >> 3) + 1, bytesOf);
    if (present) (this.bits[i >> 3] as number) |= 1 << (i & 7);
    else this.nulls++;
  }

  reset(): void {
    this.bits.fill(0);
    this.nulls = 0;
  }

  /** The bitmap Arrow wants, or nothing when every value is present. */
  bitmap(length: number): { nullBitmap?: Uint8Array } {
    return this.nulls > 0 ? { nullBitmap: this.bits.subarray(0, (length + 7) >> 3) } : {};
  }
}

/** A UTF-8 column in Arrow's layout (offsets + bytes), appended value by value. */
class Utf8Column {
  length = 0;
  private offsets = new Int32Array(1025);
  private bytes = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private readonly validity = new Validity();

  /** Bytes held so far (what bounds a file). */
  get size(): number {
    return this.used + this.length * 4;
  }

  append(value: unknown): void {
    const present = value !== null && value !== undefined;
    if (present) {
      const text = String(value);
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      this.reserve(text.length * 3);
      this.used += this.bytes.write(text, this.used);
    }
    this.endValue(present);
  }

  /** Appends a value given as UTF-8 bytes (`bytes[start..end)`), copied as they are. */
  appendUtf8(bytes: Buffer, start: number, end: number): void {
    this.reserve(end - start);
    this.used += bytes.copy(this.bytes, this.used, start, end);
    this.endValue(true);
  }

  /** Room for `more` bytes of values. */
  private reserve(more: number): void {
    this.bytes = roomFor(this.bytes, this.used + more, bufferOf);
  }

  /** Records the value just written (or its absence) in the validity bitmap and the offsets. */
  private endValue(present: boolean): void {
    this.validity.set(this.length, present);
    this.offsets = roomFor(this.offsets, this.length + 2, int32sOf);
    this.offsets[++this.length] = this.used;
  }

  reset(): void {
    this.length = 0;
    this.used = 0;
    this.validity.reset();
  }

  vector(): Arrow.Vector {
    return arrow.makeVector(
      arrow.makeData({
        type: new arrow.Utf8(),
        length: this.length,
        nullCount: this.validity.nulls,
        valueOffsets: this.offsets.subarray(0, this.length + 1),
        data: new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.used),
        ...this.validity.bitmap(this.length),
      }),
    );
  }
}

/** An INT64 (or millisecond timestamp, from seconds) column, appended value by value. */
class Int64Column {
  length = 0;
  private values = new BigInt64Array(1024);
  private readonly validity = new Validity();

  /** Timestamps arrive in seconds and are stored in milliseconds. */
  private readonly scale: number;

  constructor(private readonly type: Arrow.Int64 | Arrow.TimestampMillisecond) {
    this.scale = type instanceof arrow.TimestampMillisecond ? 1000 : 1;
  }

  get size(): number {
    return this.length * 8;
  }

  append(value: unknown): void {
    const present = value !== null && value !== undefined;
    this.values = roomFor(this.values, this.length + 1, int64sOf);
    if (present) {
      this.values[this.length] = BigInt(Number(value) * this.scale);
    } else this.values[this.length] = 0n;
    this.validity.set(this.length, present);
    this.length++;
  }

  /** Text staged in an integer column: read as a number, as `append` reads any value. */
  appendUtf8(bytes: Buffer, start: number, end: number): void {
    this.append(bytes.toString('utf8', start, end));
  }

  reset(): void {
    this.length = 0;
    this.validity.reset();
  }

  vector(): Arrow.Vector {
    // makeData's overloads cannot name "Int64 or timestamp"; the props are right for both.
    const make = arrow.makeData as unknown as (props: Record<string, unknown>) => Arrow.Data;
    return arrow.makeVector(
      make({
        type: this.type,
        length: this.length,
        nullCount: this.validity.nulls,
        data: this.values.subarray(0, this.length),
        ...this.validity.bitmap(this.length),
      }),
    );
  }
}

type ColumnBuilder = Utf8Column | Int64Column;

/** Integers as INT64, times as millisecond timestamps, text and JSON as UTF-8. */
function builderFor(type: TableDef['columns'][number]['type']): ColumnBuilder {
  if (type === 'integer') return new Int64Column(new arrow.Int64());
  if (type === 'timestamp') return new Int64Column(new arrow.TimestampMillisecond());
  return new Utf8Column();
}

/**
 * The rows of one Parquet file, column by column, filled from staged records value by value
 * (`slot`: the exported column a staged one goes to, -1 for one not exported). The buffers are
 * reused from file to file (`reset`): a fresh set per file left the C heap fragmented by the
 * large short-lived blocks (glibc keeps the holes), ~70 MB more RSS at 1M rows.
 */
class FileColumns implements ValueSink {
  private readonly builders: ColumnBuilder[];

  constructor(private readonly def: TableDef) {
    this.builders = def.columns.map((column) => builderFor(column.type));
  }

  get rows(): number {
    return this.builders[0]?.length ?? 0;
  }

  get size(): number {
    let total = 0;
    for (const builder of this.builders) total += builder.size;
    return total;
  }

  text(slot: number, bytes: Buffer, start: number, end: number): void {
    if (slot >= 0) (this.builders[slot] as ColumnBuilder).appendUtf8(bytes, start, end);
  }

  number(slot: number, value: number): void {
    if (slot >= 0) (this.builders[slot] as ColumnBuilder).append(value);
  }

  null(slot: number): void {
    if (slot >= 0) (this.builders[slot] as ColumnBuilder).append(null);
  }

  reset(): void {
    for (const builder of this.builders) builder.reset();
  }

  encode(): Uint8Array {
    const vectors: Record<string, Arrow.Vector> = {};
    this.def.columns.forEach((column, i) => {
      vectors[column.name] = (this.builders[i] as ColumnBuilder).vector();
    });
    const wasmTable = parquet.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table(vectors), 'stream'));
    return parquet.writeParquet(wasmTable, writerProperties(this.def));
  }
}

/**
 * A file is cut at this much column data even before `batchSize` rows, so large rows (big
 * payloads) cannot make one file, and the memory encoding it takes, grow without bound.
 */
export const MAX_FILE_BYTES = 4 << 20;

/**
 * Writes a staged table as a dataset in one ordered pass over its sorted runs: partition by
 * partition, each in key order, a file every `batchSize` rows (or MAX_FILE_BYTES of data).
 * `def` holds the exported columns. Returns the files (paths relative to `out`, with their
 * BLAKE3 and size) and the row count; `onFile` hears the rows written so far after each file.
 */
export function writeParquetTable(
  out: string,
  def: TableDef,
  staging: StagingRef,
  batchSize: number,
  onFile?: (rows: number) => void,
): { files: WrittenFile[]; rows: number } {
  const files: WrittenFile[] = [];
  let rows = 0;
  let dir: string | undefined;
  let part = 0;
  const pending = new FileColumns(def);
  // Records hold every column of the table; each goes to its exported column, if any.
  const slots = tableDef(def.name).columns.map((column) => def.columns.findIndex((exported) => exported.name === column.name));
  const flush = () => {
    if (dir === undefined) {
      dir = def.name;
      mkdirSync(join(out, dir), { recursive: true });
    }
    const file = join(dir, `part-${String(part++).padStart(5, '0')}.parquet`);
    const bytes = pending.encode();
    writeFileSync(join(out, file), bytes);
    // Hashed here, from the bytes in hand: on the pool that is side by side, not one file after
    // another in the exporting thread once every table is written.
    files.push({ path: file, blake3: `blake3:${blake3Hex(bytes)}`, size: bytes.length });
    rows += pending.rows;
    pending.reset();
    onFile?.(rows);
  };
  /** The current partition's sort-key prefix (`<value>\0`). */
  let partitionKey: string | undefined;
  for (const record of mergedRecords(staging, def.name)) {
    if (def.partition && (partitionKey === undefined || !record.key.startsWith(partitionKey))) {
      if (pending.rows > 0) flush();
      const value = partitionOfKey(record.key);
      partitionKey = `${value}\0`;
      dir = `${def.name}${sep}${def.partition}=${value}`;
      part = 0;
      mkdirSync(join(out, dir), { recursive: true });
    }
    record.values(slots, pending);
    if (pending.rows >= batchSize || pending.size >= MAX_FILE_BYTES) flush();
  }
  // An empty table (or partition-less one) still gets its dataset directory and one file.
  if (pending.rows > 0 || files.length === 0) flush();
  return { files, rows };
}

/** Rows in a Parquet file, from its footer alone (for verify): only the ranges read are loaded. */
export async function parquetRowCount(path: string): Promise<number> {
  const file = await parquet.ParquetFile.fromFile(await openAsBlob(path));
  return file.metadata().fileMetadata().numRows();
}

/**
 * SHA-256 of a dataset's rows, files in path order (partition, then part), for telling whether
 * two datasets written differently (other file cuts, encodings, writer versions) hold the same
 * rows. One file is read at a time.
 */
export function parquetRowsDigest(paths: readonly string[]): string {
  const hash = createHash('sha256');
  for (const path of [...paths].sort()) {
    const table = arrow.tableFromIPC(parquet.readParquet(readFileSync(path)).intoIPCStream());
    const names = table.schema.fields.map((field) => field.name);
    hash.update(`${JSON.stringify(names)}\n`);
    for (const row of table) {
      const values = names.map((name) => {
        const value = (row as unknown as Record<string, unknown>)[name];
        return typeof value === 'bigint' ? value.toString() : value;
      });
      hash.update(`${JSON.stringify(values)}\n`);
    }
  }
  return hash.digest('hex');
}
