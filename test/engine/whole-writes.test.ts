import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createKey, hasKey } from '../../engine/ledger/keys.js';
import { makeDirs, writeAll, writeFileWhole } from '../../engine/whole-writes.js';
import { onSmallDevice } from '../helpers/device.js';
import { scratch } from '../helpers/git.js';

const { dir: newDir } = scratch();

test('writeAll puts every byte down, at the end or at a position', () => {
  const path = join(newDir(), 'f');
  const fd = openSync(path, 'w+');
  try {
    const body = randomBytes(3 << 20);
    writeAll(fd, Buffer.alloc(4));
    writeAll(fd, body);
    writeAll(fd, 'PACK', 0);
    assert.ok(readFileSync(path).equals(Buffer.concat([Buffer.from('PACK'), body])));
  } finally {
    closeSync(fd);
  }
});

test('writeFileWhole replaces a file whole, or (exclusive) refuses an existing one untouched', () => {
  const dir = newDir();
  const path = join(dir, 'manifest.json');
  writeFileWhole(path, 'one\n');
  writeFileWhole(path, 'two\n');
  assert.equal(readFileSync(path, 'utf8'), 'two\n');
  assert.throws(() => writeFileWhole(path, 'three\n', { exclusive: true }), { code: 'EEXIST' });
  assert.equal(readFileSync(path, 'utf8'), 'two\n');
  assert.deepEqual(readdirSync(dir), ['manifest.json'], 'no temporary file left');
});

test('on a full device: nothing half written under the name, no temporary file, and a key can be made once there is room', (t) =>
  onSmallDevice(t, 1 << 20, (device) => {
    const { dir } = device;
    writeFileWhole(join(dir, 'kept'), 'before\n');
    device.fill(0);
    assert.throws(() => writeFileWhole(join(dir, 'kept'), randomBytes(64 << 10)), { code: 'ENOSPC' });
    assert.throws(() => writeFileWhole(join(dir, 'new'), randomBytes(64 << 10)), { code: 'ENOSPC' });
    assert.throws(() => createKey(join(dir, 'keys'), 'user:ada'), { code: 'ENOSPC' });
    assert.equal(readFileSync(join(dir, 'kept'), 'utf8'), 'before\n', 'the old content stays');
    assert.equal(hasKey(join(dir, 'keys'), 'user:ada'), false, 'no key file cut short (it would read as key_exists)');
    assert.deepEqual(device.files(), ['filler', 'kept']);
    device.empty();
    assert.equal(createKey(join(dir, 'keys'), 'user:ada').actor, 'user:ada');
    assert.equal(hasKey(join(dir, 'keys'), 'user:ada'), true);
  }));

test('makeDirs makes nested directories (again: no error); on a read-only device it says EROFS, not ENOENT', async (t) => {
  const dir = newDir();
  makeDirs(join(dir, 'a', 'b', 'c'));
  makeDirs(join(dir, 'a', 'b', 'c'));
  assert.equal(existsSync(join(dir, 'a', 'b', 'c')), true);
  // Node's own recursive mkdir says ENOENT here.
  await onSmallDevice(t, 64 << 10, (device) => assert.throws(() => makeDirs(join(device.dir, 'out', 'sub')), { code: 'EROFS' }), {
    readOnly: true,
  });
});
