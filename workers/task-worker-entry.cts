/**
 * The file piscina loads in each worker thread. CommonJS on purpose: piscina first `require`s
 * its entry, and Node 20's `require()` of an ES module that is still being imported (a second
 * task arriving while the first loads the task code) aborts the whole process with a fatal V8
 * error ("IsGraphAsync must be used on an instantiated module"; 1 run in 40 of a pool started
 * and closed at once). From here the task code is imported once, as an ES module.
 *
 * The handler is handed over as a promise, which piscina awaits before the worker starts waiting
 * for tasks. That wait (Atomics.wait) blocks the thread's event loop, so an import still running
 * then stalled until the first task arrived: a pool whose starting thread stayed busy for 300 ms
 * finished its first tasks 49 ms after that thread was free (the workers only then loaded their
 * code); now 3 ms.
 */
import type { Task } from '../engine/scheduler/tasks.js';

export default import('./task-worker.js').then(
  (code) =>
    (task: Task): Promise<unknown> =>
      code.default(task),
  // A failure to load reaches every task, as an error it can report.
  (err: unknown) => (): Promise<unknown> => Promise.reject(err),
);
