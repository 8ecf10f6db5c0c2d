import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileObjectStore } from '../../../engine/git/file-object-store.js';
import { startFrontier, walkCommits } from '../../../engine/git/walk.js';
import { git, removeDir, tempRepo } from '../../helpers/git.js';

const dir = tempRepo();
after(() => removeDir(dir));

/** A history with branches and merges, dates increasing: main, topic, and a merge of both. */
function buildHistory(): void {
  let stream = '';
  let mark = 0;
  const commit = (ref: string, from: number | null, merge: number | null, time: number): number => {
    mark++;
    stream += `commit ${ref}\nmark :${mark}\ncommitter T <t@e> ${time} +0000\ndata 4\nc${String(mark).padStart(2, '0')}\n`;
    if (from) stream += `from :${from}\n`;
    if (merge) stream += `merge :${merge}\n`;
    stream += `M 100644 inline f\ndata ${String(mark).length + 1}\n${mark}\n\n`;
    return mark;
  };
  let main = commit('refs/heads/main', null, null, 1000);
  for (let i = 0; i < 30; i++) main = commit('refs/heads/main', main, null, 1000 + i * 10 + 10);
  let topic = commit('refs/heads/topic', main - 10, null, 1500);
  for (let i = 0; i < 12; i++) topic = commit('refs/heads/topic', topic, null, 1500 + i * 7);
  main = commit('refs/heads/main', main, topic, 2000);
  for (let i = 0; i < 5; i++) main = commit('refs/heads/main', main, null, 2100 + i);
  git(dir, ['fast-import', '--quiet'], stream);
}
buildHistory();
const store = new FileObjectStore(join(dir, '.git'));
const rev = (name: string) => git(dir, ['rev-parse', name]).trim();

function ours(tips: string[], stops: string[], batch: number): string[] {
  const seen: string[] = [];
  let frontier = startFrontier(tips, stops);
  do {
    frontier = walkCommits(store, frontier, batch, (oid) => seen.push(oid)).frontier;
  } while (frontier.length > 0);
  return seen;
}

describe('walkCommits agrees with git rev-list', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['whole main with a merged topic', ['refs/heads/main'], []],
    ['main excluding topic', ['refs/heads/main'], ['refs/heads/topic']],
    ['a window main~3..main', ['refs/heads/main'], ['refs/heads/main~3']],
    ['two tips', ['refs/heads/main~6', 'refs/heads/topic'], ['refs/heads/main~20']],
  ];
  for (const [name, tips, stops] of cases) {
    test(name, () => {
      const expected = git(dir, ['rev-list', '--date-order', ...tips, ...stops.map((s) => `^${s}`)])
        .trim()
        .split('\n');
      for (const batch of [1, 7, 10_000]) {
        const got = ours(tips.map(rev), stops.map(rev), batch);
        assert.deepEqual(got, expected, `batch ${batch}`);
      }
    });
  }

  test('an empty range visits nothing', () => {
    assert.deepEqual(ours([rev('refs/heads/topic')], [rev('refs/heads/main')], 5), []);
  });
});
