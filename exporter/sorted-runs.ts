/**
 * The staging area of a Parquet export: rows as sorted runs in files instead of a SQLite table.
 * A writer (the exporting thread, or a worker) encodes rows into a buffer as they are extracted,
 * sorts the buffer by key when its task ends (or the buffer fills) and appends it as one run to
 * a file of its own per table (`<prefix>.<table>.runs`). A table is read back by merging every
 * run of every writer, so rows come in key order whichever thread wrote them, with memory
 * bounded by one chunk per run. Text goes from the extractor to Parquet's column buffers as
 * UTF-8 bytes: never a SQLite record, never a JavaScript string again (decision 0009).
 *
 * A run is `u32 byte length` then its records, each
 * `u32 length of the rest | u32 key length | key (UTF-8) | one value per column of the table`,
 * a value being `u8 0` (null), `u8 1 | u32 length | UTF-8` (text) or `u8 2 | f64` (number).
 * The key is the primary key, after the Hive partition and a NUL when the table has one.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StagingRef } from '../engine/scheduler/tasks.js';
import type { StagingArea } from './staging.js';
import type { Row, TableDef } from './tables.js';

/** Bytes of rows a writer holds per table before it sorts them into a run. */
const RUN_BYTES = 4 << 20;
/** Read-ahead shared by the runs being merged, and the most and least one run gets. */
const MERGE_BYTES = 16 << 20;
const MAX_CHUNK = 256 << 10;
const MIN_CHUNK = 8 << 10;

const NULL = 0;
const TEXT = 1;
const NUMBER = 2;

/** What a merged record's values are handed to, column by column (`slot` -1: not exported). */
export interface ValueSink {
  text(slot: number, bytes: Buffer, start: number, end: number): void;
  number(slot: number, value: number): void;
  null(slot: number): void;
}

/**
 * Orders strings as their UTF-8 bytes do (as SQLite's BINARY collation does). UTF-16 code units
 * order the same way except where a surrogate (a code point past U+FFFF, four UTF-8 bytes) meets
 * a unit from U+E000 up (three bytes, smaller).
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return rankAboveD800(x) - rankAboveD800(y);
    return x - y;
  }
  return a.length - b.length;
}

const rankAboveD800 = (unit: number) => (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000);

/**
 * `compareUtf8` with the keys' ASCII-ness known (their UTF-8 as long as their UTF-16): when
 * either is ASCII, no surrogate can meet a unit from U+E000 up, and the engine's own comparison
 * (several times faster) gives the same order.
 */
function compareKeys(a: string, aAscii: boolean, b: string, bAscii: boolean): number {
  if (aAscii || bAscii) return a < b ? -1 : a > b ? 1 : 0;
  return compareUtf8(a, b);
}

const days = new Map<number, string>();

/**
 * The UTC day (`YYYY-MM-DD`) of unix seconds: the `day=` partition. Years past 9999 or before
 * year 0 keep ISO 8601's expanded form (`+010000-01-01`); a time no date can hold is `null`.
 */
export function dayOf(seconds: number): string {
  const day = Math.floor(seconds / 86_400);
  let text = days.get(day);
  if (text === undefined) {
    const date = new Date(day * 86_400_000);
    text = Number.isNaN(date.getTime()) ? 'null' : date.toISOString().slice(0, -14);
    if (days.size > 100_000) days.clear();
    days.set(day, text);
  }
  return text;
}

/** A row's sort key: its partition (when the table has one), a NUL, its primary key. */
function sortKeyOf(def: TableDef, key: string): (row: Row) => string {
  if (def.partition === 'day') return (row) => `${dayOf(Number(row.ts))}\0${row[key] ?? ''}`;
  if (def.partition === 'state_ref') return (row) => `${row.state_ref ?? 'null'}\0${row[key] ?? ''}`;
  return (row) => String(row[key] ?? '');
}

/** The partition a sort key names (the text before its NUL). */
export const partitionOfKey = (key: string): string => key.slice(0, key.indexOf('\0'));

/** One table's rows from one writer: encoded into a buffer, sorted and appended as a run. */
class TableRuns {
  private buffer = Buffer.allocUnsafe(64 << 10);
  private used = 0;
  private starts: number[] = [];
  private keys: string[] = [];
  private ascii: boolean[] = [];
  private readonly columns: string[];
  private readonly sortKey: (row: Row) => string;

  constructor(
    readonly file: string,
    def: TableDef,
  ) {
    this.columns = def.columns.map((column) => column.name);
    this.sortKey = sortKeyOf(def, this.columns[0] as string);
  }

  /** Room for `bytes` more: the buffer doubles (copied) when it has less. */
  private reserve(bytes: number): void {
    if (this.used + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.used + bytes));
    this.buffer.copy(grown, 0, 0, this.used);
    this.buffer = grown;
  }

  /** Writes text at `at` as `u32 length | UTF-8` (room reserved by the caller); returns the end. */
  private text(at: number, value: string): number {
    const length = this.buffer.write(value, at + 4);
    this.buffer.writeUInt32LE(length, at);
    return at + 4 + length;
  }

  add(row: Row): void {
    const key = this.sortKey(row);
    const start = this.used;
    // UTF-8 takes at most three bytes per UTF-16 unit.
    this.reserve(8 + key.length * 3);
    let at = this.text(start + 4, key);
    const ascii = at - start - 8 === key.length;
    for (const name of this.columns) {
      const value = row[name];
      if (typeof value === 'string') {
        this.used = at;
        // Three bytes per unit at most; a long text is measured instead (a 100 MB payload must
        // not reserve 300 MB).
        this.reserve(5 + (value.length > 65_536 ? Buffer.byteLength(value) : value.length * 3));
        this.buffer[at] = TEXT;
        at = this.text(at + 1, value);
      } else if (typeof value === 'number') {
        this.used = at;
        this.reserve(9);
        this.buffer[at] = NUMBER;
        this.buffer.writeDoubleLE(value, at + 1);
        at += 9;
      } else if (value === null || value === undefined) {
        this.used = at;
        this.reserve(1);
        this.buffer[at] = NULL;
        at += 1;
      } else {
        // Nothing of the row stays: the next one is written where it began.
        this.used = start;
        throw new TypeError(`column ${name} of a ${this.file} row holds a ${typeof value}`);
      }
    }
    this.buffer.writeUInt32LE(at - start - 4, start);
    this.used = at;
    this.starts.push(start);
    this.keys.push(key);
    this.ascii.push(ascii);
    if (this.used >= RUN_BYTES) this.spill();
  }

  /** Drops the rows held (never written). */
  discard(): void {
    this.used = 0;
    this.starts = [];
    this.keys = [];
    this.ascii = [];
  }

  /** Sorts the rows held by key (ties by their bytes) and appends them to the file as one run. */
  spill(): void {
    const count = this.starts.length;
    if (count === 0) return;
    const { buffer, starts, keys, ascii, used } = this;
    const end = (i: number) => (i + 1 < count ? (starts[i + 1] as number) : used);
    const order = Array.from({ length: count }, (_, i) => i);
    order.sort(
      (a, b) =>
        compareKeys(keys[a] as string, ascii[a] as boolean, keys[b] as string, ascii[b] as boolean) ||
        buffer.compare(buffer, starts[b] as number, end(b), starts[a] as number, end(a)),
    );
    const run = Buffer.allocUnsafe(4 + used);
    run.writeUInt32LE(used, 0);
    let at = 4;
    for (const i of order) at += buffer.copy(run, at, starts[i] as number, end(i));
    this.discard();
    // A huge row grew the buffer: it is not kept for the rows after it.
    if (this.buffer.length > 2 * RUN_BYTES) this.buffer = Buffer.allocUnsafe(64 << 10);
    const fd = openSync(this.file, 'a');
    try {
      for (let written = 0; written < run.length; ) written += writeSync(fd, run, written, run.length - written);
    } finally {
      closeSync(fd);
    }
  }
}

/** One run of a file, read record by record through a chunk of read-ahead. */
class RunCursor {
  chunk: Buffer;
  /** Bytes of the chunk holding data read from the file. */
  private filled = 0;
  /** The file position the next read starts at. */
  private position: number;
  /** The current record: where it starts and ends in the chunk, its key, where its values start. */
  start = 0;
  end = 0;
  key = '';
  /** Whether the key is ASCII (`compareKeys`). */
  ascii = true;
  valuesAt = 0;

  constructor(
    private readonly file: string,
    private readonly fd: number,
    from: number,
    private readonly to: number,
    chunkBytes: number,
  ) {
    this.position = from;
    this.chunk = Buffer.allocUnsafe(chunkBytes);
  }

  /**
   * Makes the chunk hold `bytes` bytes from `at` on (moving what is left to its start and
   * reading on, growing it for a record larger than itself); returns where they now start, or
   * -1 when the run has fewer left.
   */
  private hold(at: number, bytes: number): number {
    if (at + bytes <= this.filled) return at;
    const left = this.filled - at;
    if (bytes > this.chunk.length) {
      const grown = Buffer.allocUnsafe(bytes);
      this.chunk.copy(grown, 0, at, this.filled);
      this.chunk = grown;
    } else this.chunk.copyWithin(0, at, this.filled);
    this.filled = left;
    while (this.filled < bytes && this.position < this.to) {
      const read = readSync(
        this.fd,
        this.chunk,
        this.filled,
        Math.min(this.chunk.length - this.filled, this.to - this.position),
        this.position,
      );
      if (read === 0) break;
      this.filled += read;
      this.position += read;
    }
    return this.filled >= bytes ? 0 : -1;
  }

  /** Moves to the next record; false once the run is done. */
  next(): boolean {
    let at = this.hold(this.end, 4);
    if (at === -1) return false;
    const length = this.chunk.readUInt32LE(at);
    at = this.hold(at, 4 + length);
    if (at === -1) throw new Error(`staging file ${this.file} ends inside a record`);
    const keyLength = this.chunk.readUInt32LE(at + 4);
    this.start = at;
    this.end = at + 4 + length;
    this.key = this.chunk.toString('utf8', at + 8, at + 8 + keyLength);
    this.ascii = keyLength === this.key.length;
    this.valuesAt = at + 8 + keyLength;
    return true;
  }

  /** Hands the current record's values to `sink`: stored column i goes to `slots[i]`. */
  values(slots: readonly number[], sink: ValueSink): void {
    const chunk = this.chunk;
    let at = this.valuesAt;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as number;
      const tag = chunk[at];
      if (tag === TEXT) {
        const length = chunk.readUInt32LE(at + 1);
        sink.text(slot, chunk, at + 5, at + 5 + length);
        at += 5 + length;
      } else if (tag === NUMBER) {
        sink.number(slot, chunk.readDoubleLE(at + 1));
        at += 9;
      } else {
        sink.null(slot);
        at += 1;
      }
    }
  }
}

/** Whether cursor a's record comes before b's: key order, ties by the records' bytes. */
function before(a: RunCursor, b: RunCursor): boolean {
  const byKey = compareKeys(a.key, a.ascii, b.key, b.ascii);
  if (byKey !== 0) return byKey < 0;
  return a.chunk.compare(b.chunk, b.start, b.end, a.start, a.end) < 0;
}

/** The run files of a table in a staging area: its own writer's, then each adopted shard's. */
function runFiles(view: StagingRef, table: string): string[] {
  // A writer that staged no row of the table has no file for it.
  return [view.path, ...view.shards].map((prefix) => `${prefix}.${table}.runs`).filter((file) => existsSync(file));
}

/**
 * Every staged row of a table in key order (partition first), merged from all runs of all
 * writers. Yields a cursor on each record in turn, valid until the next step.
 */
export function* mergedRecords(view: StagingRef, table: string): Generator<RunCursor> {
  const fds: number[] = [];
  const spans: Array<[string, number, number, number]> = [];
  try {
    for (const file of runFiles(view, table)) {
      const fd = openSync(file, 'r');
      fds.push(fd);
      const size = fstatSync(fd).size;
      const header = Buffer.alloc(4);
      for (let at = 0; at + 4 <= size; ) {
        readSync(fd, header, 0, 4, at);
        const length = header.readUInt32LE(0);
        spans.push([file, fd, at + 4, Math.min(size, at + 4 + length)]);
        at += 4 + length;
      }
    }
    const chunkBytes = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.floor(MERGE_BYTES / Math.max(1, spans.length))));
    // A binary min-heap of the runs by their current record.
    const heap: RunCursor[] = [];
    for (const [file, fd, from, to] of spans) {
      const cursor = new RunCursor(file, fd, from, to, chunkBytes);
      if (cursor.next()) heap.push(cursor);
    }
    const siftDown = (i: number) => {
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) return;
        const right = left + 1;
        const child = right < heap.length && before(heap[right] as RunCursor, heap[left] as RunCursor) ? right : left;
        if (!before(heap[child] as RunCursor, heap[i] as RunCursor)) return;
        [heap[i], heap[child]] = [heap[child] as RunCursor, heap[i] as RunCursor];
        i = child;
      }
    };
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
    while (heap.length > 0) {
      const top = heap[0] as RunCursor;
      yield top;
      if (!top.next()) {
        const last = heap.pop() as RunCursor;
        if (heap.length === 0) break;
        heap[0] = last;
      }
      siftDown(0);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** The run files written for a staging area: its own (`<path>.<table>.runs`) and its shards' (`<path>-<thread>.…`). */
function stagedFiles(path: string): string[] {
  const own = `${basename(path)}.`;
  const shard = `${basename(path)}-`;
  return readdirSync(dirname(path))
    .filter((name) => (name.startsWith(own) || name.startsWith(shard)) && name.endsWith('.runs'))
    .map((name) => join(dirname(path), name));
}

/**
 * A staging area of sorted runs: rows of the tables created in it, sorted into runs as they
 * come; `view()` names its files and those of the shards adopted, for `mergedRecords`.
 */
export class RunStaging implements StagingArea {
  readonly format = 'runs';
  private readonly tables = new Map<string, TableRuns>();
  private readonly adopted: string[] = [];

  /**
   * `owner`: this area is an export's (it removes what a crashed export left, and its own files
   * and its shards' on close); a worker's shard is not.
   */
  constructor(
    readonly path: string,
    private readonly owner = true,
  ) {
    if (owner) for (const file of stagedFiles(path)) rmSync(file, { force: true });
  }

  create(def: TableDef): void {
    this.tables.set(def.name, new TableRuns(`${this.path}.${def.name}.runs`, def));
  }

  insert(table: string, row: Row): void {
    (this.tables.get(table) as TableRuns).add(row);
  }

  /** Sorts what every table holds into runs (before another thread reads the files). */
  flushAll(): void {
    for (const runs of this.tables.values()) runs.spill();
  }

  /** Drops the rows not yet sorted into runs (those of a task that failed). */
  discard(): void {
    for (const runs of this.tables.values()) runs.discard();
  }

  /** Shards written by workers (prefixes `<path>-<thread>`) whose runs count as this area's. */
  adopt(shards: readonly string[]): void {
    this.adopted.push(...shards);
  }

  view(): StagingRef {
    this.flushAll();
    return { path: this.path, tables: [...this.tables.keys()], shards: [...this.adopted] };
  }

  close(): void {
    if (this.owner) for (const file of stagedFiles(this.path)) rmSync(file, { force: true });
  }

  async closeInBackground(): Promise<void> {
    if (this.owner) await Promise.all(stagedFiles(this.path).map((file) => rm(file, { force: true })));
  }
}
