/**
 * The file piscina loads in each worker thread. CommonJS on purpose: piscina first `require`s
 * its entry, and Node 20's `require()` of an ES module that is still being imported (a second
 * task arriving while the first loads the task code) aborts the whole process with a fatal V8
 * error ("IsGraphAsync must be used on an instantiated module"; 1 run in 40 of a pool started
 * and closed at once). From here the task code is imported once, as an ES module.
 */
import type { Task } from '../engine/scheduler/tasks.js';

const taskCode = import('./task-worker.js');
// A failure to load reaches the tasks that await it; it must not also end the thread unhandled.
taskCode.catch(() => undefined);

export = async function run(task: Task): Promise<unknown> {
  return (await taskCode).default(task);
};
