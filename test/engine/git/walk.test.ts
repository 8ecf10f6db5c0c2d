import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileObjectStore } from '../../../engine/git/file-object-store.js';
import { type FrontierEntry, StorageOrderWalk, startFrontier, walkCommits } from '../../../engine/git/walk.js';
import { git, packEntries, removeDir, tempRepo } from '../../helpers/git.js';

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

describe('StorageOrderWalk', () => {
  const revList = (tips: string[], stops: string[]) =>
    git(dir, ['rev-list', '--date-order', ...tips, ...stops.map((s) => `^${s}`)])
      .trim()
      .split('\n')
      .filter(Boolean);

  test('walks each range as git rev-list does, across steps and resumed frontiers', () => {
    const ranges: Array<[string[], string[]]> = [
      [['refs/heads/main'], ['refs/heads/topic']],
      [['refs/heads/topic'], ['refs/heads/main~20']],
      [['refs/heads/main'], ['refs/heads/main~3']],
      [['refs/heads/main~6', 'refs/heads/topic'], ['refs/heads/main~20']],
      [['refs/heads/topic'], ['refs/heads/main']],
    ];
    const expected = ranges.map(([tips, stops]) => revList(tips, stops));
    for (const batch of [1, 4, 10_000]) {
      const seen: string[][] = ranges.map(() => []);
      let walk = new StorageOrderWalk(
        store,
        ranges.map(([tips, stops]) => startFrontier(tips.map(rev), stops.map(rev))),
      );
      for (let steps = 0; walk.step(batch, (range, oid) => seen[range]?.push(oid)) > 0; steps++) {
        // Every other step resumes from the frontiers, as the next pool task does.
        if (steps % 2 === 1) walk = new StorageOrderWalk(store, walk.frontiers());
      }
      assert.deepEqual(seen, expected, `batch ${batch}`);
      assert.deepEqual(
        walk.frontiers(),
        ranges.map(() => []),
      );
    }
  });

  /** Four refs whose commits alternate in time, each ref's written after the other's in the pack. */
  function interleavedRepo(): { repo: string; refs: string[] } {
    const repo = tempRepo();
    const refs = ['a', 'b', 'c', 'd'].map((name) => `refs/heads/${name}`);
    let stream = '';
    for (const [r, ref] of refs.entries()) {
      for (let i = 0; i < 20; i++) {
        const time = 1000 + i * 10 + r; // a0 b0 c0 d0 a1 b1 ... in time
        stream += `commit ${ref}\ncommitter T <t@e> ${time} +0000\ndata 5\n${ref.slice(-1)}${String(i).padStart(2, '0')}\n\n`;
      }
    }
    git(repo, ['fast-import', '--quiet'], stream);
    return { repo, refs };
  }

  const visitOrder = (repo: string, refs: string[]) => {
    const objects = new FileObjectStore(join(repo, '.git'));
    const frontiers: FrontierEntry[][] = refs.map((ref) => startFrontier([git(repo, ['rev-parse', ref]).trim()]));
    const visits: Array<{ range: number; oid: string; position: number | undefined }> = [];
    const walk = new StorageOrderWalk(objects, frontiers);
    while (walk.step(7, (range, oid) => visits.push({ range, oid, position: objects.position(oid) })) > 0);
    objects.close();
    return visits;
  };

  test('reads ranges stored one after another one after another, though their commits alternate in time', () => {
    const { repo, refs } = interleavedRepo();
    try {
      const visits = visitOrder(repo, refs);
      assert.equal(visits.length, 80);
      // fast-import wrote each ref's commits together: each range is read through before the next.
      const ranges = visits.map((visit) => visit.range);
      assert.deepEqual(
        ranges,
        [...ranges].sort((x, y) => x - y),
      );
      // Each range newest first, as git walks it.
      for (const [r, ref] of refs.entries()) {
        const own = visits.filter((visit) => visit.range === r).map((visit) => visit.oid);
        assert.deepEqual(own, git(repo, ['rev-list', ref]).trim().split('\n'));
      }
    } finally {
      removeDir(repo);
    }
  });

  test('reads ranges interleaved in time side by side once git has repacked them, front to back', () => {
    const { repo, refs } = interleavedRepo();
    try {
      git(repo, ['repack', '-adfq']);
      // The oracle for positions: the offsets git lists for the one pack.
      const packDir = join(repo, '.git', 'objects', 'pack');
      const index = readdirSync(packDir).filter((name) => name.endsWith('.idx'));
      assert.equal(index.length, 1);
      const offsets = new Map(
        packEntries(repo, join(packDir, index[0] as string))
          .filter((entry) => entry.type === 'commit')
          .map((entry) => [entry.oid, entry.offset]),
      );
      const visits = visitOrder(repo, refs);
      assert.equal(visits.length, 80);
      for (const visit of visits) assert.equal(visit.position, offsets.get(visit.oid), visit.oid);
      const positions = visits.map((visit) => visit.position as number);
      assert.deepEqual(
        positions,
        [...positions].sort((x, y) => x - y),
      );
      // Side by side: the ranges take turns.
      assert.deepEqual(
        visits.slice(0, 8).map((visit) => visit.range),
        [3, 2, 1, 0, 3, 2, 1, 0],
      );
    } finally {
      removeDir(repo);
    }
  });
});
