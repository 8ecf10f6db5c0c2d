import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { seededRandom } from '../../../engine/codec/random.js';
import { asGatosError, GatosError } from '../../../engine/errors.js';
import { FileObjectStore } from '../../../engine/git/file-object-store.js';
import { MemoryObjectStore } from '../../../engine/git/memory-object-store.js';
import { parseCommit, serializeCommit, serializeTree } from '../../../engine/git/object-codec.js';
import { decodeOidInto } from '../../../engine/git/oid.js';
import { PackFile } from '../../../engine/git/pack-file.js';
import { adoptSharedIndexes, IndexTable, PackIndex, sharedIndexesUnder } from '../../../engine/git/pack-index.js';
import { prepareObject } from '../../../engine/git/pack-writer.js';
import type { GitObject, ObjectType } from '../../../engine/git/ports.js';
import { initRepository, openRepository, storedObjectBytes } from '../../../engine/git/repository.js';
import { onSmallDevice } from '../../helpers/device.js';
import { fsckStrict, git, gitBytes, packEntries, scratch } from '../../helpers/git.js';

const { repo, dir: scratchDir } = scratch();

const sig = { name: 'Ada', email: 'ada@example.com', timestamp: 1700000000, timezone: '+0000' };

/**
 * A fast-import stream of `n` commits, each rewriting one line of a 200-line file at a random
 * spot, so every version is closest to its neighbour and gc builds long delta chains.
 */
function history(n: number): string {
  let seed = 7;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
  };
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${next().toString(36)}${next().toString(36)}`);
  let stream = '';
  for (let i = 0; i < n; i++) {
    lines[next() % 200] = `changed ${i} ${next().toString(36)}${next().toString(36)}`;
    const text = `${lines.join('\n')}\n`;
    const message = `commit ${i}\n`;
    stream += `commit refs/heads/main\nmark :${i + 1}\ncommitter T <t@e> ${1700000000 + i} +0000\n`;
    stream += `data ${Buffer.byteLength(message)}\n${message}`;
    if (i > 0) stream += `from :${i}\n`;
    stream += `M 100644 inline data.txt\ndata ${Buffer.byteLength(text)}\n${text}\n`;
  }
  return stream;
}

/** Every object git knows, with type, via `cat-file --batch-all-objects`. */
function allObjects(dir: string): Array<{ oid: string; type: ObjectType }> {
  return git(dir, ['cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype)'])
    .trim()
    .split('\n')
    .map((line) => {
      const [oid, type] = line.split(' ');
      return { oid: oid as string, type: type as ObjectType };
    });
}

function assertSameAsGit(dir: string, store: FileObjectStore): number {
  const objects = allObjects(dir);
  for (const { oid, type } of objects) {
    const ours = store.read(oid);
    assert.equal(ours.type, type, oid);
    assert.deepEqual(Buffer.from(ours.body), gitBytes(dir, ['cat-file', type, oid]), oid);
  }
  return objects.length;
}

describe('FileObjectStore writes what git reads', () => {
  test('loose blob, tree and commit match git hash-object and pass fsck --strict', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const blob = store.write('blob', Buffer.from('hello\n'));
    assert.equal(blob, git(dir, ['hash-object', '--stdin'], 'hello\n').trim());
    const tree = store.write('tree', serializeTree([{ mode: '100644', name: 'hello.txt', oid: blob }]));
    assert.equal(tree, git(dir, ['mktree'], `100644 blob ${blob}\thello.txt\n`).trim());
    const commit = store.write('commit', serializeCommit({ tree, parents: [], author: sig, committer: sig, message: 'first\n' }));
    git(dir, ['update-ref', 'refs/heads/main', commit]);
    fsckStrict(dir);
    assert.equal(git(dir, ['log', '--format=%H %s']), `${commit} first\n`);
    assert.equal(git(dir, ['cat-file', '-p', `${commit}:hello.txt`]), 'hello\n');
    // Writing the same object again is a no-op and returns the same id.
    assert.equal(store.write('blob', Buffer.from('hello\n')), blob);
  });

  test('writeMany produces a pack that verify-pack and fsck accept', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const blobs = Array.from({ length: 200 }, (_, i) => ({ type: 'blob' as const, body: Buffer.from(`blob number ${i}\n`) }));
    const oids = store.writeMany([...blobs, blobs[0] as { type: 'blob'; body: Buffer }]);
    assert.equal(oids.length, 201);
    assert.equal(oids[200], oids[0]);
    const tree = serializeTree(oids.slice(0, 200).map((oid, i) => ({ mode: '100644' as const, name: `f${i}`, oid })));
    const [treeOid] = store.writeMany([{ type: 'tree', body: tree }]);
    const [commitOid] = store.writeMany([
      { type: 'commit', body: serializeCommit({ tree: treeOid as string, parents: [], author: sig, committer: sig, message: 'bulk\n' }) },
    ]);
    git(dir, ['update-ref', 'refs/heads/main', commitOid as string]);
    const packDir = join(dir, '.git/objects/pack');
    for (const idx of readdirSync(packDir).filter((f) => f.endsWith('.idx'))) git(dir, ['verify-pack', join(packDir, idx)]);
    fsckStrict(dir);
    assert.equal(git(dir, ['cat-file', '-p', `main:f17`]), 'blob number 17\n');
    assert.equal(readdirSync(packDir).filter((f) => f.startsWith('tmp_')).length, 0);
    // A fresh store (as another process would) reads everything back.
    assert.equal(assertSameAsGit(dir, new FileObjectStore(join(dir, '.git'))), 202);
  });
});

describe('object batches', () => {
  test('objects larger than the write buffer go straight to the pack between small ones', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const big = randomBytes(3 << 20); // incompressible: its zlib stream exceeds the 1 MiB buffer
    const objects = [Buffer.from('before\n'), big, Buffer.from('after\n')].map((body) => ({ type: 'blob' as const, body }));
    const oids = store.writeMany(objects);
    const packDir = join(dir, '.git/objects/pack');
    for (const idx of readdirSync(packDir).filter((f) => f.endsWith('.idx'))) git(dir, ['verify-pack', join(packDir, idx)]);
    assert.deepEqual(gitBytes(dir, ['cat-file', 'blob', oids[1] as string]), big);
    assert.equal(git(dir, ['cat-file', 'blob', oids[2] as string]), 'after\n');
  });

  test('a batch keeps one copy of an id added twice (git sees each object once)', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const bodies = Array.from({ length: 3000 }, (_, i) => Buffer.from(`object ${i}\n`));
    // Each body twice, the copies far apart and in another order (past the table's first growth).
    const oids = store.writeMany([...bodies, ...bodies.slice().reverse()].map((body) => ({ type: 'blob' as const, body })));
    const packDir = join(dir, '.git/objects/pack');
    const [idx] = readdirSync(packDir).filter((f) => f.endsWith('.idx'));
    const listed = packEntries(dir, join(packDir, idx as string)).filter((entry) => entry.type === 'blob');
    assert.equal(listed.length, 3000);
    assert.equal(git(dir, ['cat-file', 'blob', oids[2999] as string]), 'object 2999\n');
  });

  test('an index table finds the ids it holds, also among ids sharing their first or last bytes', () => {
    const table = new IndexTable(true);
    const id = (head: number, tail: number) => {
      const oid = Buffer.alloc(20);
      oid.writeUInt32BE(head, 0);
      oid.writeUInt32BE(tail, 16);
      return oid;
    };
    // Many ids on few heads: long probe runs, and growth past the first table.
    for (let i = 0; i < 5000; i++) table.add(id(i % 7, i), i * 10, 0);
    for (let i = 0; i < 5000; i++) assert.ok(table.has(id(i % 7, i)), `row ${i}`);
    for (let i = 5000; i < 6000; i++) assert.equal(table.has(id(i % 7, i)), false);
    assert.equal(table.has(id(0xffffffff, 1)), false);
    // Ids alike in their first and last four bytes share a slot: told apart by the bytes between.
    const alike = (i: number) => {
      const oid = id(0x12345678, 0x9abcdef0);
      oid.writeUInt32BE(i, 8);
      return oid;
    };
    for (let i = 0; i < 50; i++) table.add(alike(i), 0, 0);
    for (let i = 0; i < 50; i++) assert.ok(table.has(alike(i)));
    assert.equal(table.has(alike(50)), false);
  });

  test('objects added over time become readable together at finish; an aborted batch leaves nothing', async () => {
    const dir = repo();
    for (const store of [new FileObjectStore(join(dir, '.git')), new MemoryObjectStore()]) {
      const bodies = Array.from({ length: 30 }, (_, i) => Buffer.from(`batched ${i}\n`));
      const expected = bodies.map((body) => new MemoryObjectStore().write('blob', body));
      const aborted = store.openBatch();
      aborted.add({ type: 'blob', body: Buffer.from('never written\n') });
      aborted.abort();
      const batch = store.openBatch();
      for (const [i, body] of bodies.entries()) {
        batch.add({ type: 'blob', body });
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(store.has(expected[0] as string), false, 'nothing visible before finish');
      batch.finish();
      for (const [i, oid] of expected.entries()) assert.deepEqual(Buffer.from(store.read(oid).body), bodies[i]);
      assert.equal(store.has(new MemoryObjectStore().write('blob', Buffer.from('never written\n'))), false);
    }
    const packDir = join(dir, '.git/objects/pack');
    assert.equal(readdirSync(packDir).filter((f) => f.endsWith('.pack')).length, 1);
    assert.equal(readdirSync(packDir).filter((f) => f.startsWith('tmp_')).length, 0);
    fsckStrict(dir);
  });
});

describe('a device that fills up', () => {
  // A write may store part of what it was given and fail the next call: a truncated object
  // renamed into place would be corrupt for good (an existing object is never rewritten).
  test('a loose object or a pack that does not fit leaves nothing behind, and fits once there is room', (t) =>
    onSmallDevice(t, 1 << 20, (device) => {
      git(device.dir, ['init', '-q', 'repo']);
      const dir = join(device.dir, 'repo');
      const store = new FileObjectStore(join(dir, '.git'));
      const small = store.write('blob', Buffer.from('fits\n'));
      const before = device.files();
      // 12 KiB left: each write below stores what fits, then fails.
      device.fill(12 << 10);
      const big = randomBytes(48 << 10);
      assert.throws(
        () => store.write('blob', big),
        (err: unknown) => asGatosError(err).code === 'disk_full',
      );
      assert.throws(
        () =>
          store.writeMany([
            { type: 'blob', body: randomBytes(40 << 10) },
            { type: 'blob', body: randomBytes(40 << 10) },
          ]),
        (err: unknown) => asGatosError(err).code === 'disk_full',
      );
      assert.deepEqual(device.files(), [...before, 'filler'].sort(), 'no temporary file, no truncated object or pack');
      fsckStrict(dir);
      device.empty();
      const oid = store.write('blob', big);
      assert.ok(gitBytes(dir, ['cat-file', 'blob', oid]).equals(big), 'the object written once there is room is whole');
      assert.equal(git(dir, ['cat-file', '-p', small]), 'fits\n');
      fsckStrict(dir);
    }));
});

describe('a read-only repository', () => {
  test('reads work; a write says the file system is read-only (permission_denied), not ENOENT', (t) =>
    onSmallDevice(t, 1 << 20, (device) => {
      git(device.dir, ['init', '-q', 'repo']);
      const gitDir = join(device.dir, 'repo', '.git');
      const oid = new FileObjectStore(gitDir).write('blob', Buffer.from('kept\n'));
      device.makeReadOnly();
      const store = new FileObjectStore(gitDir);
      assert.equal(Buffer.from(store.read(oid).body).toString(), 'kept\n');
      // A new fan-out directory is needed: Node's recursive mkdir would call EROFS ENOENT.
      assert.throws(
        () => store.write('blob', Buffer.from('new\n')),
        (err: unknown) => asGatosError(err).code === 'permission_denied' && /read-only file system/.test(asGatosError(err).message),
      );
    }));
});

describe('many packs', () => {
  test('ids in many small packs and a large one are all found, by this store and a fresh one', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const small = Array.from({ length: 40 }, (_, p) =>
      store.writeMany(Array.from({ length: 20 }, (_, i) => ({ type: 'blob' as const, body: Buffer.from(`small ${p} ${i}\n`) }))),
    ).flat();
    const large = store.writeMany(Array.from({ length: 5000 }, (_, i) => ({ type: 'blob' as const, body: Buffer.from(`large ${i}\n`) })));
    const loose = store.write('blob', Buffer.from('loose\n'));
    // A fresh store, and one holding every index compact (as stores do for packs of over 2^20 objects).
    const readers = [store, new FileObjectStore(join(dir, '.git')), new FileObjectStore(join(dir, '.git'), { compactIndexAbove: 0 })];
    for (const reader of readers) {
      for (const [i, oid] of small.entries())
        assert.equal(Buffer.from(reader.read(oid).body).toString(), `small ${Math.floor(i / 20)} ${i % 20}\n`);
      for (const oid of [large[0], large[4999], loose] as string[]) assert.ok(reader.has(oid));
      for (const [i, oid] of large.entries()) assert.equal(Buffer.from(reader.read(oid).body).toString(), `large ${i}\n`);
      assert.equal(reader.has('0123456789abcdef0123456789abcdef01234567'), false);
      assert.throws(
        () => reader.read('0123456789abcdef0123456789abcdef01234567'),
        (err) => err instanceof GatosError && err.code === 'object_not_found',
      );
    }
    fsckStrict(dir);
  });
});

describe('FileObjectStore reads what git writes', () => {
  test('loose objects from git', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(20));
    git(dir, ['unpack-objects', '-q'], gitBytes(dir, ['pack-objects', '--stdout', '--all'], ''));
    assert.ok(assertSameAsGit(dir, new FileObjectStore(join(dir, '.git'))) > 40);
  });

  test('after gc --aggressive: OFS_DELTA chains, packed refs', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(300));
    git(dir, ['gc', '--aggressive', '-q']);
    const verify = git(dir, [
      'verify-pack',
      '-v',
      ...readdirSync(join(dir, '.git/objects/pack'))
        .filter((f) => f.endsWith('.idx'))
        .map((f) => join(dir, '.git/objects/pack', f)),
    ]);
    const depth = Math.max(...[...verify.matchAll(/^chain length = (\d+)/gm)].map((m) => Number(m[1])));
    assert.ok(depth >= 10, `expected deep delta chains, got ${depth}`);
    assert.ok(existsSync(join(dir, '.git/packed-refs')));
    assert.equal(assertSameAsGit(dir, new FileObjectStore(join(dir, '.git'))), 900);
  });

  test('stored objects match git count-objects; reads are counted with their bytes', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(40));
    // Some loose objects beside the pack.
    for (let i = 0; i < 5; i++) git(dir, ['hash-object', '-w', '--stdin'], `loose ${i}\n`);
    const store = new FileObjectStore(join(dir, '.git'));
    const counts = Object.fromEntries(
      git(dir, ['count-objects', '-v'])
        .trim()
        .split('\n')
        .map((line) => line.split(': ')),
    ) as Record<string, string>;
    assert.equal(store.storedObjects(), Number(counts.count) + Number(counts['in-pack']));
    assert.deepEqual(store.readTotals, { objects: 0, bytes: 0 });
    const head = git(dir, ['rev-parse', 'refs/heads/main']).trim();
    const commit = store.read(head);
    store.read(parseCommit(commit.body).tree);
    assert.equal(store.readTotals.objects, 2);
    assert.equal(store.readTotals.bytes, commit.body.length + Number(git(dir, ['cat-file', '-s', `${head}^{tree}`]).trim()));
  });

  test('REF_DELTA packs and several packs at once', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(120));
    const packDir = join(dir, '.git/objects/pack');
    // Without --delta-base-offset, pack-objects writes REF_DELTA entries.
    const all = git(dir, ['rev-list', '--objects', 'refs/heads/main~60']);
    git(dir, ['pack-objects', '-q', '--window=50', '--depth=40', join(packDir, 'ref')], all);
    const rest = git(dir, ['rev-list', '--objects', 'refs/heads/main', '^refs/heads/main~60']);
    git(dir, ['pack-objects', '-q', '--delta-base-offset', join(packDir, 'ofs')], rest);
    for (const f of readdirSync(packDir)) if (f.startsWith('pack-')) unlinkSync(join(packDir, f));
    assert.equal(readdirSync(packDir).filter((f) => f.endsWith('.idx')).length, 2);
    assert.equal(assertSameAsGit(dir, new FileObjectStore(join(dir, '.git'))), 360);
  });

  /** The ids in the order their entries lie in the pack. */
  const inPackOrder = (pack: PackFile, oids: Iterable<string>): string[] =>
    [...oids].sort((a, b) => pack.index.find(Buffer.from(a, 'hex')) - pack.index.find(Buffer.from(b, 'hex')));

  /**
   * 2,500 versions of one file of 3 KB random text, repacked: a pack of ~6 MB, several windows
   * long, ordered by type (commits, trees, blobs) as gc orders it; and every object as git prints it.
   */
  function versionsPack(repackOptions: string[] = []): { idxPath: string; expected: Map<string, { type: string; body: Buffer }> } {
    const dir = repo();
    let stream = '';
    for (let i = 0; i < 2500; i++) {
      const text = `${randomBytes(2300).toString('base64')}\n`;
      stream += `commit refs/heads/main\nmark :${i + 1}\ncommitter T <t@e> ${1700000000 + i} +0000\ndata 2\nc\n`;
      if (i > 0) stream += `from :${i}\n`;
      stream += `M 100644 inline data.txt\ndata ${text.length}\n${text}\n`;
    }
    git(dir, ['fast-import', '--quiet'], stream);
    git(dir, [...repackOptions, 'repack', '-adfq']);
    const packDir = join(dir, '.git/objects/pack');
    const idxPath = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.idx')) as string);
    // `<oid> <type> <size>\n<body>\n` per object.
    const batch = gitBytes(dir, ['cat-file', '--batch-all-objects', '--batch']);
    const expected = new Map<string, { type: string; body: Buffer }>();
    for (let at = 0; at < batch.length; ) {
      const eol = batch.indexOf(10, at);
      const [oid, type, size] = batch.toString('latin1', at, eol).split(' ') as [string, string, string];
      expected.set(oid, { type, body: batch.subarray(eol + 1, eol + 1 + Number(size)) });
      at = eol + 1 + Number(size) + 1;
    }
    assert.equal(expected.size, 7500);
    return { idxPath, expected };
  }

  test('bodies read through windows stay whole once their windows are read into again', () => {
    // Stored without compression, a body is the pack's own bytes: it must not be a view of a window.
    const { idxPath, expected } = versionsPack(['-c', 'pack.compression=0']);
    const pack = PackFile.open(idxPath);
    const inOrder = inPackOrder(pack, expected.keys());
    const bodies = inOrder.map((oid) => pack.read(Buffer.from(oid, 'hex'))?.body);
    assert.ok(pack.reading.windowLoads > 4, `the pack is read through more windows than are kept: ${JSON.stringify(pack.reading)}`);
    for (const [i, oid] of inOrder.entries()) {
      assert.ok(Buffer.from(bodies[i] as Uint8Array).equals((expected.get(oid) as { body: Buffer }).body), oid);
    }
    pack.close();
  });

  test('transient reads give the stored bytes without copying a stored body out of its window; deltas are never views', () => {
    // Blobs stored uncompressed, as GATOS writes envelopes (level 0): ~3 MB, several windows.
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const random = seededRandom(13);
    const bodies = Array.from({ length: 3000 }, () => Buffer.from(Array.from({ length: 1000 }, () => Math.floor(random() * 256))));
    const oids = store.writeMany(bodies.map((body) => prepareObject('blob', body, 0)));
    store.close();
    const packDir = join(dir, '.git/objects/pack');
    const pack = PackFile.open(join(packDir, readdirSync(packDir).find((f) => f.endsWith('.idx')) as string));
    const bodyOf = new Map(oids.map((oid, i) => [oid, bodies[i] as Buffer]));
    const inOrder = inPackOrder(pack, oids);
    let views = 0;
    for (const oid of inOrder) {
      const body = bodyOf.get(oid) as Buffer;
      const read = (pack.read(Buffer.from(oid, 'hex'), undefined, true) as GitObject).body;
      // Checked before the next read, as a transient reader must.
      assert.ok(Buffer.from(read).equals(body), oid);
      // A view of a read window (1 MiB and more), not a copy of its own; `read` copies.
      if (read.buffer.byteLength >= 1 << 20) views++;
      assert.ok((pack.read(Buffer.from(oid, 'hex')) as GitObject).body.buffer.byteLength < 1 << 20, oid);
    }
    assert.ok(pack.reading.windowLoads > 2, `read through windows: ${JSON.stringify(pack.reading)}`);
    assert.ok(views > inOrder.length / 2, `most stored bodies are window views: ${views} of ${inOrder.length}`);
    pack.close();
    // Compressed and deltified (gc's defaults): every body read transiently is git's, out of
    // order (entries read on their own) and in pack order (windows read into again while a
    // delta's base is looked up behind it).
    const packed = versionsPack();
    const deltas = PackFile.open(packed.idxPath);
    const shuffled = [...packed.expected.keys()].sort(() => random() - 0.5);
    const packOrder = inPackOrder(deltas, shuffled);
    for (const oid of [...shuffled, ...packOrder]) {
      const object = deltas.read(Buffer.from(oid, 'hex'), undefined, true) as GitObject;
      assert.ok(Buffer.from(object.body).equals((packed.expected.get(oid) as { body: Buffer }).body), oid);
    }
    assert.ok(deltas.reading.windowLoads > 4, `windows were read into again: ${JSON.stringify(deltas.reading)}`);
    deltas.close();
  });

  test("a repacked pack read out of order (entry by entry) and in order (windows) gives git's bytes", () => {
    const { idxPath, expected } = versionsPack();
    const pack = PackFile.open(idxPath);
    const check = (oids: string[]) => {
      for (const oid of oids) {
        const object = pack.read(Buffer.from(oid, 'hex'));
        const want = expected.get(oid) as { type: string; body: Buffer };
        assert.equal(object?.type, want.type, oid);
        assert.ok(Buffer.from(object.body).equals(want.body), oid);
      }
    };
    const random = seededRandom(11);
    const shuffled = [...expected.keys()].sort(() => random() - 0.5);
    check(shuffled);
    const afterRandom = { ...pack.reading };
    assert.ok(afterRandom.directReads > 2000, `out of order, entries are read on their own: ${JSON.stringify(afterRandom)}`);
    assert.ok(afterRandom.windowLoads < 100, `out of order, few windows are loaded: ${JSON.stringify(afterRandom)}`);
    // In pack order, windows come back after at most a probe's worth of direct reads.
    const inOrder = inPackOrder(pack, expected.keys());
    check(inOrder);
    const direct = pack.reading.directReads - afterRandom.directReads;
    assert.ok(direct < 2000, `in order, entries are read through windows again: ${direct} direct reads`);
    pack.close();
  });

  test("positions: a pack's offsets as git lists them, packs one after another, loose objects none", () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(40));
    const packDir = join(dir, '.git/objects/pack');
    const older = git(dir, ['rev-list', '--objects', 'refs/heads/main~20']);
    git(dir, ['pack-objects', '-q', join(packDir, 'a')], older);
    git(dir, ['pack-objects', '-q', join(packDir, 'b')], git(dir, ['rev-list', '--objects', 'refs/heads/main', '^refs/heads/main~20']));
    for (const f of readdirSync(packDir)) if (f.startsWith('pack-')) unlinkSync(join(packDir, f));
    const loose = git(dir, ['hash-object', '-w', '--stdin'], 'loose\n').trim();
    const store = new FileObjectStore(join(dir, '.git'));
    const packs = readdirSync(packDir)
      .filter((f) => f.endsWith('.idx'))
      .sort()
      .map((f) => packEntries(dir, join(packDir, f)));
    assert.equal(packs.length, 2);
    let highest = -1;
    for (const entries of packs) {
      const positions = entries.map((entry) => store.position(entry.oid) as number);
      // Within a pack, positions keep git's offsets apart exactly; each pack comes after the last.
      for (const [i, entry] of entries.entries())
        assert.equal((positions[i] as number) - (positions[0] as number), entry.offset - (entries[0]?.offset as number));
      assert.ok(Math.min(...positions) > highest);
      highest = Math.max(...positions);
    }
    assert.equal(store.position(loose), undefined);
    assert.equal(store.position('0'.repeat(40)), undefined);
    // Reading an object leaves its position as it was.
    const commit = older.split('\n')[0]?.split(' ')[0] as string;
    const looked = store.position(commit);
    store.read(commit);
    assert.equal(store.position(commit), looked);
    store.close();
  });

  test('a pack appearing after the store opened is found', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    const oid = git(dir, ['hash-object', '--stdin'], 'late\n').trim();
    assert.equal(store.has(oid), false);
    git(dir, ['hash-object', '-w', '--stdin'], 'late\n');
    git(dir, ['repack', '-adq']);
    assert.equal(Buffer.from(store.read(oid).body).toString(), 'late\n');
  });
});

describe('corrupt inputs give typed errors', () => {
  function codeOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof GatosError, String(err));
      return err.code;
    }
    assert.fail('expected an error');
  }

  test('bad zlib in a loose object', () => {
    const dir = repo();
    const oid = git(dir, ['hash-object', '-w', '--stdin'], 'x\n').trim();
    const path = join(dir, '.git/objects', oid.slice(0, 2), oid.slice(2));
    unlinkSync(path);
    writeFileSync(path, Buffer.from('not zlib at all'));
    assert.equal(
      codeOf(() => new FileObjectStore(join(dir, '.git')).read(oid)),
      'corrupt_object',
    );
  });

  test('a loose object whose content does not match its name', () => {
    const dir = repo();
    const a = git(dir, ['hash-object', '-w', '--stdin'], 'a\n').trim();
    const b = git(dir, ['hash-object', '--stdin'], 'b\n').trim();
    const target = join(dir, '.git/objects', b.slice(0, 2));
    if (!existsSync(target)) git(dir, ['hash-object', '-w', '--stdin'], 'b\n');
    unlinkSync(join(target, b.slice(2)));
    writeFileSync(join(target, b.slice(2)), readFileSync(join(dir, '.git/objects', a.slice(0, 2), a.slice(2))));
    assert.equal(
      codeOf(() => new FileObjectStore(join(dir, '.git')).read(b)),
      'hash_mismatch',
    );
  });

  test('a bad header inside valid zlib', () => {
    const dir = repo();
    const oid = git(dir, ['hash-object', '-w', '--stdin'], 'y\n').trim();
    const path = join(dir, '.git/objects', oid.slice(0, 2), oid.slice(2));
    unlinkSync(path);
    writeFileSync(path, deflateSync(Buffer.from('blob 99\0y\n')));
    assert.equal(
      codeOf(() => new FileObjectStore(join(dir, '.git')).read(oid)),
      'corrupt_object',
    );
  });

  test('a truncated pack', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(60));
    const packDir = join(dir, '.git/objects/pack');
    const pack = readdirSync(packDir).find((f) => f.endsWith('.pack')) as string;
    truncateSync(join(packDir, pack), 200);
    const head = git(dir, ['rev-parse', 'refs/heads/main']).trim();
    assert.equal(
      codeOf(() => new FileObjectStore(join(dir, '.git')).read(head)),
      'corrupt_pack',
    );
  });

  test('pack indexes live in shared memory: one copy per process, handed to other threads', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(60));
    const packDir = join(dir, '.git/objects/pack');
    const idxPath = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.idx')) as string);
    const first = PackIndex.open(idxPath);
    assert.ok(first.shared?.data instanceof SharedArrayBuffer);
    const held = sharedIndexesUnder(`${packDir}/`);
    assert.deepEqual(Object.keys(held), [idxPath]);
    // A second open (here, or in a worker after adoptSharedIndexes) reuses the same memory.
    adoptSharedIndexes(held);
    const second = PackIndex.open(idxPath);
    assert.equal(second.shared?.data, first.shared?.data);
    assert.equal(second.count, first.count);
  });

  test('a compact index (heads and offsets only) finds what the whole index finds, and nothing else', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(60));
    git(dir, ['gc', '--quiet', '--aggressive']);
    const packDir = join(dir, '.git/objects/pack');
    const idxPath = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.idx')) as string);
    const whole = PackIndex.open(idxPath);
    const compact = PackIndex.open(idxPath, { compactAbove: 0 });
    assert.equal(whole.compact, false);
    assert.equal(compact.compact, true);
    assert.equal(compact.shared.data, undefined);
    assert.ok(compact.count > 100);
    for (let i = 0; i < whole.count; i++) {
      const oid = whole.rawOidAt(i);
      assert.deepEqual(compact.rawOidAt(i), oid);
      assert.equal(compact.find(oid), whole.offsetAt(i));
      // Same first four bytes, different tail: a candidate row, but not a match.
      const near = Buffer.from(oid);
      near[19] = (near[19] as number) ^ 0x01;
      assert.equal(compact.hasHead(compact.firstWithHead(near), near), true);
      assert.equal(compact.find(near), -1);
      assert.equal(whole.find(near), -1);
    }
    compact.verify();
    compact.close();
    whole.close();

    // Reads through a compact index are confirmed by hashing (delta chains included).
    const pack = PackFile.open(idxPath, { compactIndexAbove: 0 });
    assert.equal(pack.index.compact, true);
    for (const { oid, type } of allObjects(dir)) {
      const raw = Buffer.from(oid, 'hex');
      const object = pack.read(raw);
      assert.equal(object?.type, type, oid);
      assert.deepEqual(Buffer.from(object?.body ?? []), gitBytes(dir, ['cat-file', type, oid]), oid);
      raw[19] = (raw[19] as number) ^ 0x01;
      assert.equal(pack.read(raw), undefined);
    }
    pack.close();
  });

  test('a damaged index fails verify()', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(60));
    const packDir = join(dir, '.git/objects/pack');
    const idxPath = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.idx')) as string);
    PackIndex.open(idxPath).verify();
    const bytes = readFileSync(idxPath);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
    chmodSync(idxPath, 0o644);
    writeFileSync(idxPath, bytes);
    assert.equal(
      codeOf(() => PackIndex.open(idxPath).verify()),
      'corrupt_pack',
    );
    assert.equal(
      codeOf(() => PackIndex.open(idxPath, { compactAbove: 0 }).verify()),
      'corrupt_pack',
    );
  });

  test('a pack whose index is missing', () => {
    const dir = repo();
    git(dir, ['fast-import', '--quiet'], history(60));
    const packDir = join(dir, '.git/objects/pack');
    const idx = readdirSync(packDir).find((f) => f.endsWith('.idx')) as string;
    renameSync(join(packDir, idx), join(dir, 'moved.idx'));
    const head = git(dir, ['rev-parse', 'refs/heads/main']).trim();
    assert.equal(
      codeOf(() => new FileObjectStore(join(dir, '.git')).read(head)),
      'object_not_found',
    );
  });

  test('an invalid object id', () => {
    const dir = repo();
    const store = new FileObjectStore(join(dir, '.git'));
    // Too short, too long, a non-hex digit at the start, in the middle and at the end, non-ASCII.
    const blob = git(dir, ['hash-object', '-w', '--stdin'], 'hello\n').trim();
    for (const bad of [
      'HEAD',
      blob.slice(1),
      `${blob}0`,
      `g${blob.slice(1)}`,
      `${blob.slice(0, 21)}x${blob.slice(22)}`,
      `${blob.slice(0, 39)}-`,
      `${blob.slice(0, 39)}é`,
    ])
      assert.equal(
        codeOf(() => store.read(bad)),
        'invalid_oid',
        bad,
      );
    // Either case names the same object, as in git.
    assert.deepEqual(store.read(blob.toUpperCase()), store.read(blob));
  });

  test('ids decoded into a reused buffer: the bytes Buffer.from(hex) gives, for every digit in either case', () => {
    const into = new Uint8Array(20);
    const random = seededRandom(7);
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: 20 }, () => Math.floor(random() * 256)));
      for (const hex of [bytes.toString('hex'), bytes.toString('hex').toUpperCase()]) {
        assert.equal(decodeOidInto(hex, into), true, hex);
        assert.deepEqual(Buffer.from(into), bytes);
      }
    }
    assert.equal(decodeOidInto('0123456789abcdefABCDEF0123456789abcdef01', into), true);
    assert.equal(Buffer.from(into).toString('hex'), '0123456789abcdefabcdef0123456789abcdef01');
  });

  test('failed reads write nothing', () => {
    const dir = repo();
    const before = git(dir, ['count-objects', '-v']);
    const store = new FileObjectStore(join(dir, '.git'));
    codeOf(() => store.read('1'.repeat(40)));
    assert.equal(git(dir, ['count-objects', '-v']), before);
  });
});

describe('MemoryObjectStore', () => {
  test('gives the same ids as the file store', () => {
    const dir = repo();
    const file = new FileObjectStore(join(dir, '.git'));
    const memory = new MemoryObjectStore();
    for (let i = 0; i < 50; i++) {
      const body = Buffer.from(`object ${i}`.repeat(i));
      assert.equal(memory.write('blob', body), file.write('blob', body));
    }
    const commit = serializeCommit({
      tree: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
      parents: [],
      author: sig,
      committer: sig,
      message: 'm\n',
    });
    const oid = memory.write('commit', commit);
    assert.deepEqual(parseCommit(memory.read(oid).body).message, 'm\n');
    assert.throws(
      () => memory.read('2'.repeat(40)),
      (err: unknown) => err instanceof GatosError && err.code === 'object_not_found',
    );
  });
});

describe('storedObjectBytes', () => {
  test('counts loose objects at a fixed size and packs at their size on disk', () => {
    const dir = repo();
    const gitDir = join(dir, '.git');
    assert.equal(storedObjectBytes(gitDir), 0);
    const blobs = Array.from({ length: 40 }, (_, i) => `blob ${i}\n`);
    for (const blob of blobs) git(dir, ['hash-object', '-w', '--stdin'], blob);
    assert.equal(storedObjectBytes(gitDir), 40 * 250);
    // git moves them into one pack (and removes the loose copies): the pack's own size counts.
    for (const [i, blob] of blobs.entries()) writeFileSync(join(dir, `f${i}`), blob);
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', 'blobs']);
    git(dir, ['repack', '-adq']);
    const packs = readdirSync(join(gitDir, 'objects', 'pack')).filter((name) => name.endsWith('.pack'));
    assert.equal(packs.length, 1);
    assert.equal(storedObjectBytes(gitDir), statSync(join(gitDir, 'objects', 'pack', packs[0] as string)).size);
  });
});

describe('openRepository', () => {
  test('refuses what it cannot read faithfully: SHA-256 objects, refs in a reftable', () => {
    for (const [extension, code] of [
      ['objectFormat = sha256', /object format sha256/],
      ['refStorage = reftable', /ref storage reftable/],
    ] as const) {
      const dir = repo();
      writeFileSync(join(dir, '.git', 'config'), `[core]\n\trepositoryformatversion = 1\n[extensions]\n\t${extension}\n`);
      assert.throws(
        () => openRepository(dir),
        (err: unknown) => err instanceof GatosError && err.code === 'unsupported_repository' && code.test(err.message),
      );
    }
  });

  test('in a linked worktree, refs and objects are the repository’s own, as git sees them', () => {
    const main = repo();
    git(main, ['commit', '-q', '--allow-empty', '-m', 'first']);
    const worktree = join(scratchDir(), 'wt');
    git(main, ['worktree', 'add', '-q', worktree]);
    const opened = openRepository(worktree);
    assert.equal(opened.gitDir, join(main, '.git'));
    assert.equal(initRepository(worktree), join(main, '.git'), 'init finds it too');
    const blob = opened.objects.write('blob', Buffer.from('from a worktree\n'));
    opened.refs.transaction().create('refs/gatos/test/worktree', blob).commit();
    assert.equal(git(main, ['cat-file', '-p', 'refs/gatos/test/worktree']), 'from a worktree\n');
    assert.equal(git(worktree, ['rev-parse', 'refs/gatos/test/worktree']).trim(), blob);
    assert.equal(opened.refs.resolve('refs/heads/main'), git(main, ['rev-parse', 'HEAD']).trim());
    opened.close();
  });
});

describe('shallow repositories', () => {
  test('an object past the shallow commits is not found, and the error says why', () => {
    const full = repo();
    for (const n of [1, 2]) git(full, ['commit', '-q', '--allow-empty', '-m', `c${n}`]);
    const shallow = repo();
    git(shallow, ['fetch', '-q', '--depth=1', `file://${full}`, 'refs/heads/main:refs/gatos/test/tip']);
    const parent = git(full, ['rev-parse', 'HEAD~1']).trim();
    const opened = openRepository(shallow);
    assert.throws(
      () => opened.objects.read(parent),
      (err: unknown) => err instanceof GatosError && err.code === 'object_not_found' && /shallow.*git fetch --unshallow/.test(err.message),
    );
    assert.throws(
      () => openRepository(full).objects.read('1'.repeat(40)),
      (err: unknown) => err instanceof GatosError && err.code === 'object_not_found' && !/shallow/.test(err.message),
    );
    opened.close();
  });
});

describe('alternates', () => {
  test('a clone made with --shared reads the objects it borrows, writes its own, and git agrees', () => {
    const source = repo();
    writeFileSync(join(source, 'a.txt'), 'borrowed\n');
    for (let i = 0; i < 50; i++) writeFileSync(join(source, `f${i}.txt`), randomBytes(200).toString('hex'));
    git(source, ['add', '.']);
    git(source, ['commit', '-q', '-m', 'first']);
    git(source, ['repack', '-adq']);
    const loose = git(source, ['hash-object', '-w', '--stdin'], 'loose in the source\n').trim();
    const borrowed = git(source, ['rev-parse', 'HEAD:a.txt']).trim();
    const base = scratchDir();
    const clone = join(base, 'clone');
    git(source, ['clone', '-q', '--shared', source, clone]);
    // And a second hop, written with a relative path as git also accepts.
    const second = join(base, 'second');
    git(clone, ['init', '-q', second]);
    writeFileSync(
      join(second, '.git', 'objects', 'info', 'alternates'),
      `# borrowed\n${join('..', '..', '..', 'clone', '.git', 'objects')}\n`,
    );
    const opened = openRepository(second);
    assert.equal(Buffer.from(opened.objects.read(borrowed).body).toString(), 'borrowed\n');
    assert.equal(Buffer.from(opened.objects.read(loose).body).toString(), 'loose in the source\n');
    assert.ok(opened.objects.has(borrowed) && opened.objects.has(loose));
    const own = opened.objects.write('blob', Buffer.from('written in the second\n'));
    assert.equal(git(second, ['cat-file', '-p', own]), 'written in the second\n');
    assert.throws(() => git(source, ['cat-file', '-e', own]), 'the source is not written to');
    const sourcePack = readdirSync(join(source, '.git', 'objects', 'pack')).find((name) => name.endsWith('.pack')) as string;
    assert.ok(
      storedObjectBytes(opened.gitDir) > statSync(join(source, '.git', 'objects', 'pack', sourcePack)).size,
      'borrowed packs count',
    );
    opened.close();
  });
});
