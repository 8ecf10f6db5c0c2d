/**
 * The build's second step (after tsc): bundles the worker's task code into one CommonJS file,
 * dist/workers/task-worker.bundle.cjs, which workers/task-worker-entry.cts loads in place of the
 * compiled ES modules. A worker then compiles one file loaded by `require`, where it resolved,
 * read and linked ~80 modules through the ES module loader: ~50 ms of CPU per worker, spent on
 * the cores an export is about to need (docs/decisions/0009, "Worker bundle").
 *
 * Packages that only ship ES modules go into the bundle (`require` cannot load them in Node 20);
 * every other dependency stays outside and is required from node_modules at run time (native
 * addons, and the large builds the code loads on use). Dynamic imports stay lazy.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const ENTRY = `${DIST}workers/task-worker.js`;
const OUT = `${DIST}workers/task-worker.bundle.cjs`;

/** Whether a package offers no CommonJS entry (so it must be bundled to be `require`d). */
function esmOnly(name: string): boolean {
  const pkg = JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { type?: string; exports?: unknown };
  return pkg.type === 'module' && !JSON.stringify(pkg.exports ?? {}).includes('"require"');
}

/**
 * `import.meta.url` keeps naming the module's own compiled file (found from the bundle's folder),
 * so files resolved beside a module (the worker entry, a child process's script, package.json)
 * are found as before.
 */
function ownUrls(bundleDir: string): Plugin {
  return {
    name: 'own-import-meta-url',
    setup(on) {
      // Every module's source is handed over as read here, so esbuild does not read it again.
      on.onLoad({ filter: /\.js$/ }, (args) => {
        const own = JSON.stringify(relative(bundleDir, args.path));
        return { contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', `__moduleUrl(${own})`), loader: 'js' };
      });
    },
  };
}

const { dependencies } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { dependencies: Record<string, string> };
const external = Object.keys(dependencies).filter((name) => !esmOnly(name));

await build({
  entryPoints: [ENTRY],
  outfile: OUT,
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external,
  banner: {
    js: "const __moduleUrl = (path) => require('node:url').pathToFileURL(require('node:path').join(__dirname, path)).href;",
  },
  plugins: [ownUrls(dirname(OUT))],
  sourcemap: 'linked',
  logLevel: 'warning',
});
