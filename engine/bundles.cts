/**
 * Which code a process runs: a bundle the build wrote (build/bundle.ts) or the compiled modules
 * it was made from. A bundle is used while it is current; a tree compiled by `tsc` alone (newer
 * modules) runs the modules. CommonJS, so that the worker entry can `require` it too.
 */
import { statSync } from 'node:fs';

/**
 * How much older than the compiled modules a bundle may be and still count as built from them:
 * a copy of the tree (`cp -r`) stamps its files in any order within the copy, while a `tsc` run
 * after the bundle was built rewrites every module seconds later.
 */
const COPY_SKEW_MS = 2000;

/** Whether `bundle` exists and was built from what is compiled now (`source` is not newer). */
export function bundleIsCurrent(bundle: string, source: string): boolean {
  const built = statSync(bundle, { throwIfNoEntry: false });
  const compiled = statSync(source, { throwIfNoEntry: false });
  return built !== undefined && compiled !== undefined && built.mtimeMs + COPY_SKEW_MS >= compiled.mtimeMs;
}
