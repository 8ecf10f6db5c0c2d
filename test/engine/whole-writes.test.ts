import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createKey, hasKey } from '../../engine/ledger/keys.js';
import { makeDirs, writeAll, writeFileWhole } from '../../engine/whole-writes.js';
import { MOUNT_NEEDED, smallDevice } from '../helpers/device.js';
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

test('on a full device: nothing half written under the name, no temporary file, and a key can be made once there is room', (t) => {
  const device = smallDevice(1 << 20);
  if (!device) {
    t.skip(MOUNT_NEEDED);
    return;
  }
  const space = device.dir;
  try {
    writeFileWhole(join(space, 'kept'), 'before\n');
    const { bavail, bsize } = statfsSync(space);
    writeFileSync(join(space, 'filler'), Buffer.alloc(bavail * bsize));
    assert.throws(() => writeFileWhole(join(space, 'kept'), randomBytes(64 << 10)), { code: 'ENOSPC' });
    assert.throws(() => writeFileWhole(join(space, 'new'), randomBytes(64 << 10)), { code: 'ENOSPC' });
    assert.throws(() => createKey(join(space, 'keys'), 'user:ada'), { code: 'ENOSPC' });
    assert.equal(readFileSync(join(space, 'kept'), 'utf8'), 'before\n', 'the old content stays');
    assert.equal(hasKey(join(space, 'keys'), 'user:ada'), false, 'no key file cut short (it would read as key_exists)');
    assert.deepEqual(
      readdirSync(space, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => entry.name)
        .sort(),
      ['filler', 'kept'],
    );
    rmSync(join(space, 'filler'));
    assert.equal(createKey(join(space, 'keys'), 'user:ada').actor, 'user:ada');
    assert.equal(hasKey(join(space, 'keys'), 'user:ada'), true);
  } finally {
    device.unmount();
  }
});

test('makeDirs makes nested directories (again: no error); on a read-only device it says EROFS, not ENOENT', (t) => {
  const dir = newDir();
  makeDirs(join(dir, 'a', 'b', 'c'));
  makeDirs(join(dir, 'a', 'b', 'c'));
  assert.equal(existsSync(join(dir, 'a', 'b', 'c')), true);
  const device = smallDevice(64 << 10, true);
  if (!device) {
    t.skip(MOUNT_NEEDED);
    return;
  }
  try {
    // Node's own recursive mkdir says ENOENT here.
    assert.throws(() => makeDirs(join(device.dir, 'out', 'sub')), { code: 'EROFS' });
  } finally {
    device.unmount();
  }
});
