import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { asGatosError, environmentError, exitCodeFor, GatosError } from '../../engine/errors.js';
import { onSmallDevice } from '../helpers/device.js';

const root = new URL('../../../', import.meta.url);

test('every error code is documented in docs/errors.md with its exit status', () => {
  const source = readFileSync(new URL('engine/errors.ts', root), 'utf8');
  const doc = readFileSync(new URL('docs/errors.md', root), 'utf8');
  const codes = [...source.matchAll(/^ {2}([A-Za-z_]+): '(?:usage|input|conflict|corrupt|failure|internal)',$/gm)].map(
    (m) => m[1] as string,
  );
  assert.ok(codes.length > 50, 'the KINDS table was found');
  for (const code of codes) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is not in docs/errors.md`);
    const documented = Number(row.split('|')[2]?.trim());
    assert.equal(documented, exitCodeFor(new GatosError(code, '')), `${code}: docs say exit ${documented}`);
  }
});

test("the machine's refusals get codes of their own, not internal: a full device, a read-only one", (t) =>
  onSmallDevice(t, 16 << 10, (full) => {
    const file = join(full.dir, 'big');
    const writeFull = catching(() => writeFileSync(file, Buffer.alloc(64 << 10)));
    assert.equal(writeFull.code, 'ENOSPC');
    const diskFull = asGatosError(writeFull);
    assert.equal(diskFull.code, 'disk_full');
    assert.match(diskFull.message, /^no space left on the device/);
    assert.equal(exitCodeFor(diskFull), 1);
    rmSync(file);
    // SQLite says SQLITE_FULL and names no file.
    const db = new Database(join(full.dir, 'db.sqlite'));
    try {
      db.exec('CREATE TABLE t (x BLOB)');
      const sqliteFull = catching(() => db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(64 << 10)));
      assert.equal(sqliteFull.code, 'SQLITE_FULL');
      assert.equal(asGatosError(sqliteFull).code, 'disk_full');
    } finally {
      db.close();
    }
    // Ours stay as they are; anything else is a bug.
    const ours = new GatosError('invalid_oid', 'x');
    assert.equal(asGatosError(ours), ours);
    assert.equal(asGatosError(new TypeError('boom')).code, 'internal');
    assert.equal(environmentError(new TypeError('boom')), undefined);
  }));

test('a read-only file system is permission_denied (exit 2), naming the path', (t) =>
  onSmallDevice(
    t,
    16 << 10,
    (readOnly) => {
      const writeReadOnly = catching(() => writeFileSync(join(readOnly.dir, 'x'), 'x'));
      assert.equal(writeReadOnly.code, 'EROFS');
      const denied = asGatosError(writeReadOnly);
      assert.equal(denied.code, 'permission_denied');
      assert.equal(denied.message, `${join(readOnly.dir, 'x')} is on a read-only file system`);
      assert.equal(exitCodeFor(denied), 2);
    },
    { readOnly: true },
  ));

test('a file where a directory is needed, or the reverse, is path_conflict (exit 2), naming the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatos-paths-'));
  try {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    for (const [action, message] of [
      [() => mkdirSync(join(file, 'sub'), { recursive: true }), /a part of .*file\/sub is a file, where a directory is needed/],
      [() => writeFileSync(join(file, 'sub'), 'x'), /a part of .*file\/sub is a file, where a directory is needed/],
      [() => readFileSync(dir), /is a directory, where a file is needed/],
    ] as const) {
      const conflict = asGatosError(catching(action));
      assert.equal(conflict.code, 'path_conflict');
      assert.match(conflict.message, message);
      assert.equal(exitCodeFor(conflict), 2);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function catching(action: () => unknown): Error & { code?: string } {
  try {
    action();
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail('expected a failure');
}
