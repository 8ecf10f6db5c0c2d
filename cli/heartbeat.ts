/**
 * A heartbeat for JSON progress records: a small thread that writes the last record again, with
 * its elapsed time and rate brought up to date, whenever none was written for `everyMs`.
 *
 * Why a thread: the steps that run longest without a word are synchronous — one SQLite statement
 * writing a table of millions of rows (`--threads 1`), moving a table into the output, hashing
 * the file — and a timer on the exporting thread cannot fire until they return. This thread has
 * its own event loop, loads nothing but Node's `fs`, and writes straight to the file descriptor.
 */
import { Worker } from 'node:worker_threads';

/** What the heartbeat repeats: the record, and what its elapsed time and rate count from. */
export interface Beat {
  record: Record<string, unknown>;
  rows: number;
  /** Epoch ms (`performance.timeOrigin + performance.now()`) the record's `elapsed_ms` counts from. */
  started: number;
  /** Epoch ms its `rate` counts from. */
  stepStarted: number;
}

export interface Heartbeat {
  /** A record was just written: repeat this one from now on, `everyMs` after the last write. */
  beat(beat: Beat): void;
  stop(): void;
}

// Plain JavaScript (an eval'd worker), so the thread starts in a few milliseconds.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const now = () => performance.timeOrigin + performance.now();
let last;
let lastAt = now();
parentPort.on('message', (beat) => { last = beat; lastAt = now(); });
const timer = setInterval(() => {
  const at = now();
  if (!last || at - lastAt < workerData.everyMs) return;
  lastAt = at;
  const elapsed = Math.round(at - last.started);
  const rate = Math.round(last.rows / Math.max((at - last.stepStarted) / 1000, 0.001));
  try {
    writeSync(workerData.fd, JSON.stringify({ ...last.record, elapsed_ms: elapsed, rate }) + '\\n');
  } catch {
    clearInterval(timer); // nobody reads any more (a closed pipe): the heartbeat ends quietly
  }
}, Math.max(1, Math.floor(workerData.everyMs / 4)));
`;

/** Starts the heartbeat thread, writing to `fd` (2: stderr). It never keeps the process alive. */
export function startHeartbeat(fd: number, everyMs: number): Heartbeat {
  const worker = new Worker(SOURCE, { eval: true, workerData: { fd, everyMs }, stdout: false, stderr: false });
  worker.unref();
  // Progress is a courtesy: a failing heartbeat thread must never fail the export.
  worker.on('error', () => undefined);
  let stopped = false;
  return {
    beat: (beat) => {
      if (!stopped) worker.postMessage(beat);
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      void worker.terminate();
    },
  };
}
