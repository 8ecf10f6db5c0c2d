import assert from 'node:assert/strict';
import { copyFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Task } from '../../engine/scheduler/tasks.js';
import { removeDir, tempDir } from '../helpers/git.js';

const require = createRequire(import.meta.url);
const WORKERS = fileURLToPath(new URL('../../workers/', import.meta.url));
type TaskCode = { ready: Promise<void>; default: (task: Task) => Promise<unknown> };

/** A reply as the caller receives it: piscina's wrapper for moved buffers taken off. */
function unwrapped(reply: unknown): unknown {
  const value = (reply as Record<symbol, unknown>)[Piscina.valueSymbol];
  return value === undefined ? reply : value;
}

describe('worker bundle', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) removeDir(dir);
  });

  test('the bundle the build writes runs tasks exactly as the compiled modules do, errors included', async () => {
    const bundle = require(join(WORKERS, 'task-worker.bundle.cjs')) as TaskCode;
    const modules = (await import('../../workers/task-worker.js')) as TaskCode;
    await Promise.all([bundle.ready, modules.ready]);
    const tasks: Task[] = [
      { kind: 'hash', algo: 'blake3', data: new Uint8Array(Buffer.from('abcdefgh')), offsets: new Uint32Array([0, 3, 8]) },
      { kind: 'canonicalize', documents: ['{"b":1,"a":[true,null,"é"]}', '{"z":{"y":1e21,"x":0.1}}'] },
      // A GatosError raised in the bundle's own copy of the error class still comes back with its code.
      { kind: 'canonicalize', documents: ['{"a":'] },
    ];
    for (const task of tasks) {
      const [fromBundle, fromModules] = await Promise.all([bundle.default(task), modules.default(task)]);
      assert.deepEqual(unwrapped(fromBundle), unwrapped(fromModules), task.kind);
    }
    assert.equal((unwrapped(await bundle.default(tasks[2] as Task)) as { error: { code: string } }).error.code, 'invalid_json');
  });

  /** A copy of the worker entry beside stand-ins for the bundle and the modules, each naming itself. */
  function entryWith(bundleAge: 'newer' | 'copied' | 'older' | 'missing'): string {
    const dir = tempDir('gatos-entry-');
    dirs.push(dir);
    copyFileSync(join(WORKERS, 'task-worker-entry.cjs'), join(dir, 'task-worker-entry.cjs'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'task-worker.js'), "export const ready = Promise.resolve();\nexport default async () => 'modules';\n");
    if (bundleAge !== 'missing') {
      writeFileSync(join(dir, 'task-worker.bundle.cjs'), "exports.ready = Promise.resolve();\nexports.default = async () => 'bundle';\n");
      const seconds = Date.now() / 1000;
      utimesSync(join(dir, 'task-worker.js'), seconds, seconds);
      // A copy of the tree may stamp the bundle a moment before the modules.
      const built = seconds + { newer: 10, copied: -0.5, older: -10 }[bundleAge];
      utimesSync(join(dir, 'task-worker.bundle.cjs'), built, built);
    }
    return join(dir, 'task-worker-entry.cjs');
  }

  test('the worker entry loads the bundle when it is current (or copied with the tree), the compiled modules when it is older or missing', async () => {
    const served = async (entry: string) => {
      const handler = await (require(entry) as { default: Promise<(task: Task) => Promise<unknown>> }).default;
      return handler({ kind: 'canonicalize', documents: [] });
    };
    assert.equal(await served(entryWith('newer')), 'bundle');
    assert.equal(await served(entryWith('copied')), 'bundle');
    assert.equal(await served(entryWith('older')), 'modules');
    assert.equal(await served(entryWith('missing')), 'modules');
  });
});
