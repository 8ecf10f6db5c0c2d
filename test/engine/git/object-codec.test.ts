import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GatosError } from '../../../engine/errors.js';
import { FileObjectStore } from '../../../engine/git/file-object-store.js';
import {
  parseCommit,
  parseTag,
  parseTree,
  readCommit,
  serializeCommit,
  serializeTag,
  serializeTree,
} from '../../../engine/git/object-codec.js';
import { fsckStrict, git, gitBytes, removeDir, tempRepo } from '../../helpers/git.js';

const dir = tempRepo();
after(() => removeDir(dir));
const store = new FileObjectStore(join(dir, '.git'));

describe('object codecs round-trip git objects byte for byte', () => {
  test('a commit with a multi-line extra header (gpgsig)', () => {
    const tree = git(dir, ['mktree'], '').trim();
    const raw = `tree ${tree}\nauthor A U Thor <a@example.com> 1700000000 +0130\ncommitter C O Mitter <c@example.com> 1700000100 -0800\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n line2\n -----END PGP SIGNATURE-----\n\nsubject\n\nbody\n`;
    const oid = git(dir, ['hash-object', '-t', 'commit', '-w', '--stdin'], raw).trim();
    const commit = parseCommit(store.read(oid).body);
    assert.equal(commit.tree, tree);
    assert.deepEqual(commit.author, { name: 'A U Thor', email: 'a@example.com', timestamp: 1700000000, timezone: '+0130' });
    assert.equal(commit.committer.timezone, '-0800');
    assert.equal(commit.extraHeaders?.[0]?.[0], 'gpgsig');
    assert.equal(Buffer.from(serializeCommit(commit)).toString(), raw);
  });

  test('trees sort directories as name + "/" like git mktree', () => {
    const blob = git(dir, ['hash-object', '-w', '--stdin'], 'x').trim();
    const sub = git(dir, ['mktree'], `100644 blob ${blob}\tf\n`).trim();
    const entries = [
      { mode: '100644' as const, name: 'a.b', oid: blob },
      { mode: '40000' as const, name: 'a', oid: sub },
      { mode: '100755' as const, name: 'a-', oid: blob },
      { mode: '100644' as const, name: 'a0', oid: blob },
    ];
    const ours = store.write('tree', serializeTree(entries));
    const listing = entries.map((e) => `${e.mode === '40000' ? '040000 tree' : `${e.mode} blob`} ${e.oid}\t${e.name}`).join('\n');
    assert.equal(ours, git(dir, ['mktree'], `${listing}\n`).trim());
    assert.deepEqual(
      parseTree(store.read(ours).body).map((e) => e.name),
      ['a-', 'a.b', 'a', 'a0'],
    );
    fsckStrict(dir);
  });

  test('annotated tags', () => {
    const blob = git(dir, ['hash-object', '-w', '--stdin'], 'tagged').trim();
    const body = serializeTag({
      object: blob,
      type: 'blob',
      tag: 'v1',
      tagger: { name: 'T', email: 't@e', timestamp: 1, timezone: '+0000' },
      message: 'release\n',
    });
    const oid = store.write('tag', body);
    assert.deepEqual(gitBytes(dir, ['cat-file', 'tag', oid]), Buffer.from(body));
    assert.equal(parseTag(store.read(oid).body).tag, 'v1');
  });

  test('malformed bodies are corrupt_object', () => {
    const bad = (fn: () => unknown) => assert.throws(fn, (err: unknown) => err instanceof GatosError && err.code === 'corrupt_object');
    bad(() => parseCommit(Buffer.from('tree nothex\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\nm')));
    bad(() => parseCommit(Buffer.from(`tree ${'a'.repeat(40)}\n\nno author`)));
    bad(() => parseTree(Buffer.from('100644 name')));
    bad(() => parseTree(Buffer.from('999 x\0aaaaaaaaaaaaaaaaaaaa')));
  });

  test('readCommit names the object that is not a commit, or not a well-formed one', () => {
    const blob = store.write('blob', Buffer.from('hi\n'));
    assert.throws(
      () => readCommit(store, blob),
      (err: unknown) =>
        err instanceof GatosError && err.code === 'corrupt_object' && err.message === `object ${blob} is a blob, not a commit`,
    );
    // Stored as a commit (git hash-object -t commit --literally would do the same), but no commit.
    const broken = store.write('commit', Buffer.from(`tree ${'a'.repeat(40)}\n\nno author`));
    assert.throws(
      () => readCommit(store, broken),
      (err: unknown) => err instanceof GatosError && err.code === 'corrupt_object' && err.message.endsWith(`(commit ${broken})`),
    );
    const tree = store.write('tree', serializeTree([]));
    const sig = { name: 'a', email: 'b', timestamp: 1, timezone: '+0000' };
    const good = store.write('commit', serializeCommit({ tree, parents: [], author: sig, committer: sig, message: 'm\n' }));
    assert.equal(readCommit(store, good).tree, tree);
  });

  test('tree entry names that would escape are refused', () => {
    for (const name of ['', '.', '..', 'a/b']) {
      assert.throws(
        () => serializeTree([{ mode: '100644', name, oid: 'a'.repeat(40) }]),
        (err: unknown) => err instanceof GatosError && err.code === 'invalid_object',
      );
    }
  });
});
