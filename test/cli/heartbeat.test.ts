import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startHeartbeat } from '../../cli/heartbeat.js';

test('heartbeat: repeats the last record, brought up to date, while this thread is blocked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatos-heartbeat-'));
  const file = join(dir, 'stderr');
  const fd = openSync(file, 'w');
  try {
    const heartbeat = startHeartbeat(fd, 100);
    const now = performance.timeOrigin + performance.now();
    const record = { event: 'export.progress', step: 'commits', rows: 50, elapsed_ms: 0, rate: 0 };
    heartbeat.beat({ record, rows: 50, started: now - 1000, stepStarted: now });
    // This thread never returns to its event loop here, as in one long SQLite statement: a timer
    // of its own could not fire. Lines still arrive.
    const lines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const deadline = performance.now() + 10_000;
    while (lines().length < 3 && performance.now() < deadline) Atomics.wait(sleeper, 0, 0, 50);
    heartbeat.stop();
    const records = lines().map((line) => JSON.parse(line) as typeof record);
    assert.ok(records.length >= 3, `${records.length} heartbeats`);
    for (const [i, repeated] of records.entries()) {
      assert.deepEqual(Object.keys(repeated), Object.keys(record), 'same fields, same order');
      assert.equal(repeated.step, 'commits');
      assert.equal(repeated.rows, 50);
      assert.ok(repeated.elapsed_ms >= 1100, `elapsed counts from the reporter's start: ${repeated.elapsed_ms}`);
      assert.ok(repeated.rate < 500, `rate counts from the step's start: ${repeated.rate}`);
      if (i > 0) assert.ok(repeated.elapsed_ms > (records[i - 1]?.elapsed_ms as number));
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
