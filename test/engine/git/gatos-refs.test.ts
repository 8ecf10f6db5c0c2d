import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatosError } from '../../../engine/errors.js';
import { journalRef, parseJournalRef } from '../../../engine/git/gatos-refs.js';
import { isValidRefName } from '../../../engine/git/refname.js';

describe('journal ref paths (decision 0002)', () => {
  test('actors take two components, namespaces one or more, and parse back from the right', () => {
    for (const [ns, actor] of [
      ['ops', 'user:alice'],
      ['gatos/jobs', 'agent:bot.v2'],
      ['a/b/c', 'service:x_y-z'],
    ] as const) {
      const ref = journalRef(ns, actor);
      assert.ok(isValidRefName(ref), ref);
      assert.deepEqual(parseJournalRef(ref), { ns, actor });
    }
    assert.equal(journalRef('gatos/jobs', 'user:alice'), 'refs/gatos/journal/gatos/jobs/user/alice');
  });

  test('names that cannot live in a ref path are refused', () => {
    for (const [ns, actor] of [
      ['ops', 'alice'],
      ['ops', 'robot:alice'],
      ['ops', 'user:a/b'],
      ['ops', 'user:'],
      ['..', 'user:alice'],
      ['ops/', 'user:alice'],
      ['-x', 'user:alice'],
      ['ops', 'user:x.lock'],
    ] as const) {
      assert.throws(
        () => journalRef(ns, actor),
        (err: unknown) => err instanceof GatosError,
        `${ns} ${actor}`,
      );
    }
    assert.equal(parseJournalRef('refs/gatos/state/ops'), undefined);
    assert.equal(parseJournalRef('refs/gatos/journal/ops/robot/x'), undefined);
  });
});
