/**
 * Alternate object directories: a repository made by `git clone --shared` or `--reference` lists
 * in `objects/info/alternates` the object directories of other repositories whose objects it
 * reads as its own (it writes only to its own). Lines are paths, absolute or relative to the
 * objects directory; `#` starts a comment; an alternate's own alternates count too (git follows
 * five levels).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const MAX_DEPTH = 5;

/** `objectsDir` followed by every object directory it borrows from, each once, in git's order. */
export function objectDirs(objectsDir: string): string[] {
  const dirs = [resolve(objectsDir)];
  const visit = (dir: string, depth: number) => {
    if (depth > MAX_DEPTH) return;
    const list = join(dir, 'info', 'alternates');
    if (!existsSync(list)) return;
    for (const line of readFileSync(list, 'utf8').split('\n')) {
      const path = line.trim();
      if (path === '' || path.startsWith('#')) continue;
      const alternate = resolve(dir, path);
      if (dirs.includes(alternate) || !existsSync(alternate)) continue;
      dirs.push(alternate);
      visit(alternate, depth + 1);
    }
  };
  visit(dirs[0] as string, 1);
  return dirs;
}
