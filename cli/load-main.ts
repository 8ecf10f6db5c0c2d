/**
 * The CLI's code for the `gatos`, `git-gatos` and `gatosd` entries: the build's bundle of it
 * (dist/cli-bundle/, one chunk per command and the chunks they share; build/bundle.ts) while it
 * is current, else the compiled modules. Each command starts ~15-20 ms sooner from the bundle
 * (docs/decisions/0009, "CLI bundle").
 */
import { fileURLToPath } from 'node:url';
import { bundleIsCurrent } from '../engine/bundles.cjs';

type Main = typeof import('./main.js');

const BUNDLE = new URL('../cli-bundle/main.js', import.meta.url);

export function loadMain(): Promise<Main> {
  if (bundleIsCurrent(fileURLToPath(BUNDLE), fileURLToPath(new URL('./main.js', import.meta.url))))
    return import(BUNDLE.href) as Promise<Main>;
  return import('./main.js');
}
