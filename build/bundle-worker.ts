/**
 * The build's second step (after tsc): bundles the worker's task code into one CommonJS file,
 * dist/workers/task-worker.bundle.cjs, which workers/task-worker-entry.cts loads in place of the
 * compiled ES modules. A worker then compiles one file loaded by `require`, where it resolved,
 * read and linked ~80 modules through the ES module loader: ~50 ms of CPU per worker, spent on
 * the cores an export is about to need (docs/decisions/0009, "Worker bundle").
 *
 * ES-module-only packages go into the bundle (`require` cannot load them in Node 20); every
 * other dependency stays outside and is required from node_modules at run time (native addons,
 * and the large builds the code loads on use).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INLINE = new Set(['@ipld/dag-cbor', 'multiformats', 'ulid']);

const { dependencies } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { dependencies: Record<string, string> };

/**
 * `import.meta.url` becomes the bundle's own URL, which only suits uses that do not depend on the
 * module's folder: `createRequire(import.meta.url)` resolves packages from anywhere in the tree.
 * Any other use (a file beside the module) would quietly point into dist/workers: refused here.
 */
function checkImportMetaUses(inputs: readonly string[]): void {
  for (const input of inputs) {
    const source = readFileSync(`${ROOT}${input}`, 'utf8');
    const uses = source.split('import.meta.url').length - 1;
    const resolving = source.split('createRequire(import.meta.url)').length - 1;
    if (uses !== resolving) throw new Error(`${input}: import.meta.url used for more than createRequire; it cannot be bundled as is`);
  }
}

const result = await build({
  entryPoints: [`${DIST}workers/task-worker.js`],
  outfile: `${DIST}workers/task-worker.bundle.cjs`,
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: Object.keys(dependencies).filter((name) => !INLINE.has(name)),
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});
checkImportMetaUses(Object.keys(result.metafile.inputs));
