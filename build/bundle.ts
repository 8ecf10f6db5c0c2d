/**
 * The build's second step (after tsc): bundles the compiled modules that processes and threads
 * load at start, so that Node reads and links a few files instead of ~80 ES modules.
 *
 * - The worker threads' task code: one CommonJS file, dist/workers/task-worker.bundle.cjs, which
 *   workers/task-worker-entry.cts loads in place of the compiled modules (~50 ms of CPU less per
 *   worker, spent on the cores an export is about to need; docs/decisions/0009, "Worker bundle").
 * - The CLI: ES module chunks in dist/cli-bundle/ from cli/main.ts, one chunk per command plus the
 *   code they share, so a command still loads only what it runs; cli/load-main.ts picks them.
 *
 * Packages that only ship ES modules go into the bundles (`require` cannot load them in Node 20);
 * every other dependency stays outside and is loaded from node_modules at run time (native
 * addons, and the large builds the code loads on use). Either bundle is used only while it is
 * current (engine/bundles.cts): a tree compiled by `tsc` alone runs its modules.
 */
import { readFileSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, type Plugin } from 'esbuild';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const WORKER_BUNDLE = `${DIST}workers/task-worker.bundle.cjs`;
const CLI_BUNDLE = `${DIST}cli-bundle`;

/** Whether a package offers no CommonJS entry (so it must be bundled to be `require`d). */
function esmOnly(name: string): boolean {
  const pkg = JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { type?: string; exports?: unknown };
  return pkg.type === 'module' && !JSON.stringify(pkg.exports ?? {}).includes('"require"');
}

/**
 * `import.meta.url` keeps naming the module's own compiled file, so files resolved beside a
 * module (the worker entry, a child process's script, package.json) are found as before.
 * `urlOf` turns that file's path, relative to the bundle's folder, into an expression for its URL.
 */
function ownUrls(bundleDir: string, urlOf: (relativePath: string) => string): Plugin {
  return {
    name: 'own-import-meta-url',
    setup(on) {
      // Every module's source is handed over as read here, so esbuild does not read it again.
      on.onLoad({ filter: /\.js$/ }, (args) => {
        const own = urlOf(JSON.stringify(relative(bundleDir, args.path)));
        return { contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', own), loader: 'js' };
      });
    },
  };
}

const { dependencies } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { dependencies: Record<string, string> };
const common: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  external: Object.keys(dependencies).filter((name) => !esmOnly(name)),
  sourcemap: 'linked',
  logLevel: 'warning',
};

// Chunk names carry content hashes: the previous build's would stay behind.
rmSync(CLI_BUNDLE, { recursive: true, force: true });
await Promise.all([
  build({
    ...common,
    entryPoints: [`${DIST}workers/task-worker.js`],
    outfile: WORKER_BUNDLE,
    format: 'cjs',
    banner: {
      js: "const __moduleUrl = (path) => require('node:url').pathToFileURL(require('node:path').join(__dirname, path)).href;",
    },
    plugins: [ownUrls(`${DIST}workers`, (path) => `__moduleUrl(${path})`)],
  }),
  build({
    ...common,
    entryPoints: [`${DIST}cli/main.js`],
    outdir: CLI_BUNDLE,
    format: 'esm',
    splitting: true,
    plugins: [ownUrls(CLI_BUNDLE, (path) => `new URL(${path}, import.meta.url).href`)],
  }),
]);
