import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GatosError, hasCode } from '../../engine/errors.js';
import type { ComputePool } from '../../engine/scheduler/pool.js';
import type { ExportJournalResult, ExportJournalTask, Task } from '../../engine/scheduler/tasks.js';
import { extractOnPool } from '../../exporter/extract.js';
import { RunStaging } from '../../exporter/sorted-runs.js';
import { scratch } from '../helpers/git.js';

const { repo: newRepo, dir: newDir } = scratch();

describe('journals on the pool', () => {
  test('a failed task fails the extraction even when another task settles in the same turn', async () => {
    // A pool whose two journal tasks settle together, the successful one first: the order
    // piscina may hand results over in when both arrive while the exporting thread is busy.
    const settlements: Array<() => void> = [];
    const pool = {
      maxInFlight: 2,
      run(task: Task): Promise<ExportJournalResult> {
        assert.equal(task.kind, 'export-journal');
        return new Promise((resolve, reject) => {
          const fails = settlements.length === 1;
          settlements.push(() =>
            fails
              ? reject(new GatosError('corrupt_object', 'object x is a blob, not a commit'))
              : resolve({ kind: 'export-journal', count: 1, rest: [], shard: 'none', read: { objects: 1, bytes: 1 } }),
          );
          if (settlements.length === 2)
            setImmediate(() => {
              for (const settle of settlements) settle();
            });
        });
      },
    } as unknown as ComputePool;
    const names = ['refs/gatos/journal/a/user/x', 'refs/gatos/journal/b/user/y'];
    const heads = names.map((name, i) => ({ name, oid: String(i + 1).repeat(40) }));
    const staging = new RunStaging(join(newDir(), 'x.staging'));
    await assert.rejects(
      extractOnPool(
        pool,
        join(newRepo(), '.git'),
        {
          heads,
          window: { since: new Map(), wanted: { commits: new Set(names), events: new Set(names) } },
          segments: [],
          objects: {},
        },
        {},
        staging,
      ),
      (err: unknown) => hasCode(err, 'corrupt_object'),
    );
    staging.close();
  });
  test('tasks take the journals whose next commit is stored first, and what a task left goes back by where it resumes', async () => {
    // Six journals whose heads sit at these pack positions; the first task leaves journal b
    // unfinished, resuming at 55. A pool of two slots settles each task as soon as it is run.
    const stored: Record<string, number> = { a: 50, b: 10, c: 40, d: 20, e: 60, f: 30, resume: 55 };
    const oidOf = (key: string) => key.padEnd(40, '0');
    const objects = { position: (oid: string) => stored[oid.replace(/0+$/, '')] };
    const taken: string[][] = [];
    const pool = {
      maxInFlight: 2,
      async run(task: Task): Promise<ExportJournalResult> {
        const { slices } = task as ExportJournalTask;
        taken.push(slices.map((slice) => slice.ref.slice(-1)));
        const rest =
          taken.length === 1 ? [{ ...(slices[0] as (typeof slices)[0]), frontier: [{ oid: oidOf('resume'), hidden: false }] }] : [];
        return { kind: 'export-journal', count: 1, rest, shard: 'none', read: { objects: 1, bytes: 1 } };
      },
    } as unknown as ComputePool;
    const names = ['a', 'b', 'c', 'd', 'e', 'f'].map((key) => `refs/gatos/journal/ns/user/${key}`);
    const heads = names.map((name) => ({ name, oid: oidOf(name.slice(-1)) }));
    const staging = new RunStaging(join(newDir(), 'x.staging'));
    await extractOnPool(
      pool,
      join(newRepo(), '.git'),
      { heads, window: { since: new Map(), wanted: { commits: new Set(names), events: new Set(names) } }, segments: [], objects },
      {},
      staging,
    );
    staging.close();
    // Three (half the queue over two slots), then one each: b, d, f; c; then a (50) before b (55) and e (60).
    assert.deepEqual(taken, [['b', 'd', 'f'], ['c'], ['a'], ['b'], ['e']]);
  });
});
