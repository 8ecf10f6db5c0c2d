import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { Task } from '../../engine/scheduler/tasks.js';
import { generateFixture } from '../../fixtures/generate.js';
import { populatePlanes } from '../../fixtures/planes.js';
import { runCaptured } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/git.js';

const require = createRequire(import.meta.url);
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const WORKERS = join(DIST, 'workers');
type CliCode = typeof import('../../cli/main.js');
type TaskCode = { ready: Promise<void>; default: (task: Task) => Promise<unknown> };

/** A reply as the caller receives it: piscina's wrapper for moved buffers taken off. */
function unwrapped(reply: unknown): unknown {
  const value = (reply as Record<symbol, unknown>)[Piscina.valueSymbol];
  return value === undefined ? reply : value;
}

describe('bundles', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) removeDir(dir);
  });

  test('the worker bundle runs tasks exactly as the compiled modules do, errors included', async () => {
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

  /** Sets `bundle` `age` relative to `source`; a copy of the tree may stamp the bundle a moment before the modules. */
  function stamp(bundle: string, source: string, age: 'newer' | 'copied' | 'older'): void {
    const seconds = Date.now() / 1000;
    utimesSync(source, seconds, seconds);
    const built = seconds + { newer: 10, copied: -0.5, older: -10 }[age];
    utimesSync(bundle, built, built);
  }

  /** A copy of the build's layout (`<dir>/engine/bundles.cjs`, the loader in `<dir>/<at>/`) in a temp dir. */
  function layoutWith(loader: string, at: string): string {
    const dir = tempDir('gatos-bundles-');
    dirs.push(dir);
    for (const sub of ['engine', at]) mkdirSync(join(dir, sub), { recursive: true });
    copyFileSync(join(DIST, 'engine', 'bundles.cjs'), join(dir, 'engine', 'bundles.cjs'));
    copyFileSync(join(DIST, at, loader), join(dir, at, loader));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    return dir;
  }

  /** The worker entry beside stand-ins for the bundle and the modules, each naming itself. */
  function entryWith(bundleAge: 'newer' | 'copied' | 'older' | 'missing'): string {
    const dir = join(layoutWith('task-worker-entry.cjs', 'workers'), 'workers');
    writeFileSync(join(dir, 'task-worker.js'), "export const ready = Promise.resolve();\nexport default async () => 'modules';\n");
    if (bundleAge !== 'missing') {
      writeFileSync(join(dir, 'task-worker.bundle.cjs'), "exports.ready = Promise.resolve();\nexports.default = async () => 'bundle';\n");
      stamp(join(dir, 'task-worker.bundle.cjs'), join(dir, 'task-worker.js'), bundleAge);
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

  test('the CLI bundle exports a repository to the same bytes as the compiled modules, and answers the same help', async () => {
    const dir = tempDir('gatos-cli-bundle-');
    dirs.push(dir);
    const repo = join(dir, 'repo');
    await generateFixture({ events: 300, seed: 3, out: repo, namespaces: 2, actors: 2, threads: 1 });
    await populatePlanes(repo, { seed: 3, messages: 40, jobs: 1, time: Date.UTC(2025, 0, 2) });
    const bundle = (await import(pathToFileURL(join(DIST, 'cli-bundle', 'main.js')).href)) as CliCode;
    const modules = await import('../../cli/main.js');
    const run = (code: CliCode, argv: string[]) => runCaptured(code.main, argv, true);
    process.env.GATOS_CLOCK_MS = String(Date.UTC(2025, 5, 1));
    try {
      for (const [name, code] of [
        ['bundle', bundle],
        ['modules', modules],
      ] as const) {
        mkdirSync(join(dir, name));
        const exported = await run(code, ['export', 'sqlite', '--repo', repo, '--out', join(dir, name, 'out.sqlite'), '--threads', '1']);
        assert.equal(exported.status, 0, exported.printed);
      }
      for (const file of ['out.sqlite', 'out.sqlite.manifest.json'])
        assert.deepEqual(readFileSync(join(dir, 'bundle', file)), readFileSync(join(dir, 'modules', file)), file);
      for (const argv of [['help'], ['help', 'export'], ['--version']])
        assert.deepEqual(await run(bundle, argv), await run(modules, argv), argv.join(' '));
    } finally {
      delete process.env.GATOS_CLOCK_MS;
    }
  });

  test('the CLI loads its bundle when it is current (or copied with the tree), the compiled modules when it is older or missing', async () => {
    const loaded = async (bundleAge: 'newer' | 'copied' | 'older' | 'missing') => {
      const dir = layoutWith('load-main.js', 'cli');
      writeFileSync(join(dir, 'cli', 'main.js'), "export const main = 'modules';\n");
      if (bundleAge !== 'missing') {
        mkdirSync(join(dir, 'cli-bundle'));
        writeFileSync(join(dir, 'cli-bundle', 'main.js'), "export const main = 'bundle';\n");
        stamp(join(dir, 'cli-bundle', 'main.js'), join(dir, 'cli', 'main.js'), bundleAge);
      }
      const { loadMain } = (await import(pathToFileURL(join(dir, 'cli', 'load-main.js')).href)) as typeof import('../../cli/load-main.js');
      return (await loadMain()).main as unknown;
    };
    assert.equal(await loaded('newer'), 'bundle');
    assert.equal(await loaded('copied'), 'bundle');
    assert.equal(await loaded('older'), 'modules');
    assert.equal(await loaded('missing'), 'modules');
  });
});
