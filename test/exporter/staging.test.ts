import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { attachStaging, openUnjournaled, Staging } from '../../exporter/staging.js';
import { type Row, tableDef } from '../../exporter/tables.js';
import { scratch } from '../helpers/git.js';

const { dir: newDir } = scratch();
const commits = tableDef('commits');

const commitRow = (id: string): Row => ({
  id,
  parent_id: null,
  ref: 'refs/gatos/journal/ns/actor',
  author: 'a <a@a>',
  ts: 1,
  message: `m ${id}`,
  trailers: '[]',
  shape_root: null,
  created_ts: 1,
  updated_ts: 1,
});

/** Ten shards (more than can be attached): ids spread over them out of order. */
function stagingWithShards(): { staging: Staging; ids: string[] } {
  const dir = newDir();
  const staging = new Staging(join(dir, 'x.staging'));
  staging.create(commits);
  const ids: string[] = [];
  staging.insert('commits', commitRow('main-0'));
  ids.push('main-0');
  const shards: string[] = [];
  for (let s = 0; s < 10; s++) {
    const shard = new Staging(`${staging.path}-${s}.sqlite`);
    shard.create(commits);
    for (let r = 0; r < 3; r++) {
      const id = `${String.fromCharCode(122 - r * 10 - s)}-${s}`;
      shard.insert('commits', commitRow(id));
      ids.push(id);
    }
    shard.flushAll();
    shard.db.close();
    shards.push(shard.path);
  }
  staging.adopt(shards);
  return { staging, ids: ids.sort() };
}

/** The commit ids a reader in another connection sees, in key order (as the SQLite sink reads them). */
function readBack(staging: Staging): string[] {
  const reader = new Database(':memory:');
  try {
    const attached = attachStaging(reader, staging.view());
    const ids = reader
      .prepare(`SELECT id FROM ${attached.source('commits')} ORDER BY id`)
      .pluck()
      .all() as string[];
    attached.detach();
    return ids;
  } finally {
    reader.close();
  }
}

describe('staging shards', () => {
  test('adopted shards are read in key order with the main rows, past the attach limit too', () => {
    const { staging, ids } = stagingWithShards();
    assert.equal(staging.view().shards.length, 8, 'eight shards are read in place, the others copied in');
    assert.deepEqual(readBack(staging), ids);
    staging.close();
  });

  test('the owner removes the staging file and every shard', () => {
    const { staging } = stagingWithShards();
    staging.close();
    const dir = join(staging.path, '..');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('staging and output files are written without a rollback journal', () => {
    const dir = newDir();
    const staging = new Staging(join(dir, 'x.staging'));
    staging.create(commits);
    staging.insert('commits', commitRow('a'.repeat(40)));
    // A transaction is open and a page changed: a journaled connection would have its file now.
    assert.deepEqual(readdirSync(dir), ['x.staging']);
    assert.equal(staging.db.pragma('journal_mode', { simple: true }), 'off');
    staging.close();
    const output = openUnjournaled(join(dir, 'out.sqlite'));
    assert.equal(output.pragma('journal_mode', { simple: true }), 'off');
    assert.equal(output.pragma('synchronous', { simple: true }), 0);
    output.close();
  });
});
