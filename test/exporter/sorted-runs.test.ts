import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { compareUtf8, dayOf, mergedRecords, RunStaging, type ValueSink } from '../../exporter/sorted-runs.js';
import { type Row, tableDef } from '../../exporter/tables.js';
import { scratch } from '../helpers/git.js';

const { dir: newDir } = scratch();
const events = tableDef('events');
const commits = tableDef('commits');

/** Collects a record's values as the JavaScript values they were staged as. */
class Collect implements ValueSink {
  values: unknown[] = [];
  text(slot: number, bytes: Buffer, start: number, end: number): void {
    this.values[slot] = bytes.toString('utf8', start, end);
  }
  number(slot: number, value: number): void {
    this.values[slot] = value;
  }
  null(slot: number): void {
    this.values[slot] = null;
  }
}

/** Every staged row of a table, merged, as value arrays in the table's column order. */
function merged(staging: RunStaging, table: string): unknown[][] {
  const slots = tableDef(table).columns.map((_, i) => i);
  const rows: unknown[][] = [];
  for (const record of mergedRecords(staging.view(), table)) {
    const collect = new Collect();
    record.values(slots, collect);
    rows.push(collect.values);
  }
  return rows;
}

const eventRow = (id: string, ts: number, payload: string): Row => ({
  id,
  event_cid: `cid-${id}`,
  ns: 'ns',
  kind: 'add',
  actor: 'a',
  ulid: '01J',
  ts,
  payload,
  commit_id: id,
  created_ts: ts,
  updated_ts: null,
});

describe('sorted runs', () => {
  test('strings compare as their UTF-8 bytes do, surrogates and private-use characters included', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', '\u00e9', '\ue000', '\uffff', '\ud83d\ude00', '\ud800\udc00', '\0') });
    fc.assert(
      fc.property(text, text, (a, b) => {
        const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        assert.equal(Math.sign(compareUtf8(a, b)), bytes);
      }),
    );
  });

  test('the day partition is the UTC day SQLite gives for the same unix seconds', () => {
    const db = new Database(':memory:');
    const day = db.prepare("SELECT strftime('%Y-%m-%d', ?, 'unixepoch')").pluck();
    const times = [0, -1, 86_399, 86_400, 951_782_400, 1_709_164_800, 1_735_689_599, -62_167_219_200, 253_402_300_799];
    fc.assert(fc.property(fc.integer({ min: -62_167_219_200, max: 253_402_300_799 }), (ts) => assert.equal(dayOf(ts), day.get(ts))));
    for (const ts of times) assert.equal(dayOf(ts), day.get(ts), `ts ${ts}`);
    db.close();
    assert.equal(dayOf(253_402_300_800), '+010000-01-01');
    assert.equal(dayOf(Number.NaN), 'null');
  });

  test('runs of several writers merge in SQLite key order (partition, then id), values intact', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.string({ unit: fc.constantFrom('0', '7', 'f', '\u00e9', '\ue000', '\ud83d\ude00'), maxLength: 6 }),
            ts: fc.integer({ min: -86_400 * 3, max: 86_400 * 3 }),
            writer: fc.integer({ min: 0, max: 3 }),
            flush: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (specs) => {
          const dir = newDir();
          const staging = new RunStaging(join(dir, 'x.staging'));
          staging.create(events);
          const shards = [1, 2, 3].map((s) => {
            const shard = new RunStaging(`${staging.path}-${s}`, false);
            shard.create(events);
            return shard;
          });
          const writers = [staging, ...shards];
          const oracle = new Database(':memory:');
          oracle.exec('CREATE TABLE e (id, ts, payload)');
          const insert = oracle.prepare('INSERT INTO e VALUES (?, ?, ?)');
          for (const [i, spec] of specs.entries()) {
            // Unique ids (a primary key), in any order and any writer.
            const id = `${spec.id}#${i}`;
            const payload = `{"n":${i}}`;
            const writer = writers[spec.writer] as RunStaging;
            writer.insert('events', eventRow(id, spec.ts, payload));
            if (spec.flush) writer.flushAll();
            insert.run(id, spec.ts, payload);
          }
          for (const shard of shards) shard.flushAll();
          staging.adopt(shards.map((shard) => shard.path));
          const expected = oracle.prepare("SELECT id, ts, payload FROM e ORDER BY strftime('%Y-%m-%d', ts, 'unixepoch'), id").raw().all();
          oracle.close();
          const rows = merged(staging, 'events');
          assert.deepEqual(
            rows.map((row) => [row[0], row[6], row[7]]),
            expected,
          );
          if (rows[0]) assert.deepEqual(rows[0].slice(9), [rows[0][6], null], 'numbers and nulls come back as staged');
          staging.close();
          assert.deepEqual(readdirSync(dir), [], 'the owner removes its runs and its shards');
        },
      ),
      { numRuns: 60 },
    );
  });

  test('records larger than the read-ahead, and many runs, merge whole', () => {
    const dir = newDir();
    const staging = new RunStaging(join(dir, 'x.staging'));
    staging.create(commits);
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const id = ((i * 7919) % 400).toString(16).padStart(3, '0');
      ids.push(id);
      // Every 50th row carries a message larger than any run's read-ahead (256 KiB at most).
      const message = i % 50 === 0 ? 'x'.repeat(300_000 + i) : `m${i}`;
      staging.insert('commits', {
        ...eventRow(id, i, '[]'),
        parent_id: null,
        ref: 'r',
        author: 'a',
        message,
        trailers: '[]',
        shape_root: null,
      });
      if (i % 3 === 0) staging.flushAll();
    }
    const rows = merged(staging, 'commits');
    assert.deepEqual(
      rows.map((row) => row[0]),
      ids.sort(),
    );
    for (const row of rows) {
      const i = row[4] as number;
      assert.equal((row[5] as string).length, i % 50 === 0 ? 300_000 + i : `m${i}`.length);
    }
    // A value of a type no column holds is refused, not staged as null.
    assert.throws(() => staging.insert('commits', { ...eventRow('x', 1, '[]'), message: true as unknown as string }), TypeError);
    staging.insert('commits', { ...eventRow('fff', 1, '[]'), message: 'after', ref: 'r', author: 'a', trailers: '[]' });
    assert.deepEqual(
      merged(staging, 'commits').at(-1)?.slice(0, 6),
      ['fff', null, 'r', 'a', 1, 'after'],
      'the refused row left nothing behind',
    );
    staging.close();
  });

  test("an export's staging area removes what a crashed export left under its name; a shard's does not", () => {
    const dir = newDir();
    const path = join(dir, 'x.staging');
    writeFileSync(`${path}.events.runs`, 'left');
    writeFileSync(`${path}-7.events.runs`, 'left');
    writeFileSync(join(dir, 'other.events.runs'), 'someone else');
    new RunStaging(`${path}-7`, false);
    assert.equal(readdirSync(dir).length, 3);
    const staging = new RunStaging(path);
    assert.deepEqual(readdirSync(dir), ['other.events.runs']);
    staging.close();
  });
});
