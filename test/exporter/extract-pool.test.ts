import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GatosError, hasCode } from '../../engine/errors.js';
import type { ComputePool } from '../../engine/scheduler/pool.js';
import type { ExportJournalResult, Task } from '../../engine/scheduler/tasks.js';
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
        { heads, window: { since: new Map(), wanted: { commits: new Set(names), events: new Set(names) } }, segments: [] },
        {},
        staging,
      ),
      (err: unknown) => hasCode(err, 'corrupt_object'),
    );
    staging.close();
  });
});
