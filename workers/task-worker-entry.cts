/**
 * The file piscina loads in each worker thread. CommonJS on purpose: piscina first `require`s
 * its entry, and Node 20's `require()` of an ES module that is still being imported (a second
 * task arriving while the first loads the task code) aborts the whole process with a fatal V8
 * error ("IsGraphAsync must be used on an instantiated module"; 1 run in 40 of a pool started
 * and closed at once).
 *
 * The task code comes from the build's bundle (build/bundle-worker.ts: one CommonJS file, loaded
 * without the ES module loader) unless the compiled modules are newer than it (a tree compiled
 * by `tsc` alone); then from the modules themselves, imported once.
 *
 * The handler is handed over as a promise, which piscina awaits before the worker starts waiting
 * for tasks. That wait (Atomics.wait) blocks the thread's event loop, so an import still running
 * then stalled until the first task arrived: a pool whose starting thread stayed busy for 300 ms
 * finished its first tasks 49 ms after that thread was free (the workers only then loaded their
 * code); now 3 ms.
 */
import { join } from 'node:path';
import { bundleIsCurrent } from '../engine/bundles.cjs';
import type { Task } from '../engine/scheduler/tasks.js';

type TaskCode = typeof import('./task-worker.js');

const BUNDLE = join(__dirname, 'task-worker.bundle.cjs');

/** The task code; `require` inside a promise, so that a failure to load is a rejection like the import's. */
function load(): Promise<TaskCode> {
  if (bundleIsCurrent(BUNDLE, join(__dirname, 'task-worker.js'))) return Promise.resolve().then(() => require(BUNDLE) as TaskCode);
  return import('./task-worker.js');
}

export default load()
  .then((code) =>
    code.ready.then(
      () =>
        (task: Task): Promise<unknown> =>
          code.default(task),
    ),
  )
  // A failure to load reaches every task, as an error it can report.
  .catch((err: unknown) => (): Promise<unknown> => Promise.reject(err));
