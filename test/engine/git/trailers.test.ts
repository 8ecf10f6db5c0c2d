import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseTrailers, trailerValue, withTrailers } from '../../../engine/git/trailers.js';
import { git, removeDir, tempRepo } from '../../helpers/git.js';

const dir = tempRepo();
after(() => removeDir(dir));

/** What git itself parses: `git interpret-trailers --parse --unfold` prints `Key: value` lines. */
function gitTrailers(message: string): Array<{ key: string; value: string }> {
  const output = git(dir, ['-c', 'trailer.separators=:', 'interpret-trailers', '--parse', '--unfold', '--no-divider'], message);
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const sep = line.indexOf(':');
      return { key: line.slice(0, sep), value: line.slice(sep + 1).trim() };
    });
}

const MESSAGES = [
  'subject only\n',
  'Key: value looks like a trailer but is the title\n',
  'title\n\nEvent-CID: bafyabc\nSig-Alg: ed25519\nSig: ed25519:00ff\n',
  'title\n\nbody paragraph\n\nState-Root: blake3:aa\nLedger-Head: 1111111111111111111111111111111111111111\n\n\n',
  'title\n\nmixed block\nEvent-CID: x\n',
  'title\n\nnot a trailer line\nSigned-off-by: A <a@b>\nAcked-by: B <b@c>\nReviewed-by: C\n',
  'title\n\nFolded: first part\n  continued here\nOther: x\n',
  'title\n\nKey : spaced separator\nK2:nospace\n',
  'title\n\n(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)\nfree text\n',
  'title\n\nbody\n\nfoo bar: not a token\n',
  'title\n\nlast paragraph only\n\nA: 1\n\nB: 2\n',
  'title\n\n  indented: first\nX-Y: z\n',
  'title\n\n# comment line\nKey: v\n',
];

describe('parseTrailers agrees with git interpret-trailers', () => {
  for (const message of MESSAGES) {
    test(JSON.stringify(message.slice(0, 48)), () => {
      assert.deepEqual(parseTrailers(message), gitTrailers(message));
    });
  }
});

describe('trailer helpers', () => {
  test('withTrailers appends a block that parses back', () => {
    const trailers = [
      { key: 'Event-CID', value: 'bafyrei' },
      { key: 'Sig-Alg', value: 'ed25519' },
    ];
    const message = withTrailers('event.append 01H\n\n', trailers);
    assert.equal(message, 'event.append 01H\n\nEvent-CID: bafyrei\nSig-Alg: ed25519\n');
    assert.deepEqual(parseTrailers(message), trailers);
    assert.deepEqual(gitTrailers(message), trailers);
  });

  test('trailerValue matches keys case-insensitively and takes the last', () => {
    const trailers = parseTrailers('t\n\nsig-alg: a\nSig-Alg: b\n');
    assert.equal(trailerValue(trailers, 'SIG-ALG'), 'b');
    assert.equal(trailerValue(trailers, 'missing'), undefined);
  });

  test('withTrailers rejects keys git would not parse', () => {
    assert.throws(() => withTrailers('t', [{ key: 'bad key', value: 'v' }]));
    assert.throws(() => withTrailers('t', [{ key: 'K', value: 'two\nlines' }]));
  });
});
