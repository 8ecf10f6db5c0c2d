/**
 * Opening and creating repositories: finds the `.git` directory (work tree, `.git` file
 * pointer, or bare repository), refuses repositories we cannot read faithfully (SHA-256 object
 * format), and hands out the file adapters of the two ports.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { GatosError } from '../errors.js';
import { makeDirs } from '../whole-writes.js';
import { objectDirs } from './alternates.js';
import { FileObjectStore } from './file-object-store.js';
import { FileRefStore } from './file-ref-store.js';
import { countLoose } from './loose-objects.js';

export interface Repository {
  readonly gitDir: string;
  readonly objects: FileObjectStore;
  readonly refs: FileRefStore;
  close(): void;
}

function isGitDir(dir: string): boolean {
  return existsSync(join(dir, 'HEAD')) && existsSync(join(dir, 'objects')) && existsSync(join(dir, 'refs'));
}

/**
 * The repository's own directory for a git directory: a linked worktree's (`git worktree add`)
 * names it in `commondir`, and keeps only per-worktree state (HEAD, its index) itself, while refs
 * and objects are shared there.
 */
function commonDir(gitDir: string): string {
  const pointer = join(gitDir, 'commondir');
  return existsSync(pointer) ? resolve(gitDir, readFileSync(pointer, 'utf8').trim()) : gitDir;
}

/**
 * The git directory for `path`: `path` itself when bare, `path/.git`, or a parent's; for a linked
 * worktree, the directory of the repository it belongs to, where refs and objects live.
 */
export function findGitDir(path: string): string {
  let dir = resolve(path);
  if (!existsSync(dir)) throw new GatosError('not_a_repository', `no such directory: ${dir}`, { path: dir });
  for (;;) {
    const dotGit = join(dir, '.git');
    if (existsSync(dotGit)) {
      if (statSync(dotGit).isFile()) {
        const match = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8'));
        if (match) return commonDir(resolve(dir, (match[1] as string).trim()));
      } else if (isGitDir(dotGit)) {
        return dotGit;
      }
    }
    if (isGitDir(dir)) return commonDir(dir);
    const parent = dirname(dir);
    if (parent === dir)
      throw new GatosError('not_a_repository', `not a git repository (or any parent): ${resolve(path)}`, { path: resolve(path) });
    dir = parent;
  }
}

/** What a loose object takes on disk, about: a zlib-compressed commit, tree or small blob. */
const LOOSE_OBJECT_BYTES = 250;

/**
 * The size of a repository's object database without reading it, alternates included: its packs'
 * sizes plus the loose objects counted (each at about LOOSE_OBJECT_BYTES). Enough to tell a small
 * repository from a large one, e.g. whether worker threads would pay for their start.
 */
export function storedObjectBytes(gitDir: string): number {
  let bytes = 0;
  for (const objects of objectDirs(join(gitDir, 'objects'))) {
    const packs = join(objects, 'pack');
    if (existsSync(packs)) for (const name of readdirSync(packs)) if (name.endsWith('.pack')) bytes += statSync(join(packs, name)).size;
    bytes += countLoose(objects) * LOOSE_OBJECT_BYTES;
  }
  return bytes;
}

function checkFormat(gitDir: string): void {
  const configPath = join(gitDir, 'config');
  if (!existsSync(configPath)) return;
  const config = readFileSync(configPath, 'utf8');
  const format = /^\s*objectformat\s*=\s*(\S+)/im.exec(config)?.[1]?.toLowerCase();
  if (format && format !== 'sha1') {
    throw new GatosError('unsupported_repository', `object format ${format} is not supported yet (SHA-1 repositories only)`, {
      gitDir,
      format,
    });
  }
  // Refs kept in a reftable (git 2.45's `--ref-format=reftable`) are not files: read as files,
  // the repository would look empty of refs.
  const refStorage = /^\s*refstorage\s*=\s*(\S+)/im.exec(config)?.[1]?.toLowerCase();
  if (refStorage && refStorage !== 'files') {
    throw new GatosError('unsupported_repository', `ref storage ${refStorage} is not supported yet (refs as files only)`, {
      gitDir,
      refStorage,
    });
  }
}

export function openRepository(path: string): Repository {
  const gitDir = findGitDir(path);
  checkFormat(gitDir);
  const objects = new FileObjectStore(gitDir);
  const refs = new FileRefStore(gitDir);
  return { gitDir, objects, refs, close: () => objects.close() };
}

/**
 * Creates an empty repository at `path` (a work tree with `.git`, or bare), the layout
 * `git init` writes. An existing repository is left as it is, a linked worktree's or a
 * submodule's (`.git` a file naming its git directory) included. Returns the git directory.
 */
export function initRepository(path: string, options: { bare?: boolean } = {}): string {
  const root = resolve(path);
  const gitDir = options.bare ? root : join(root, '.git');
  if (isGitDir(gitDir)) return gitDir;
  if (!options.bare && existsSync(gitDir) && statSync(gitDir).isFile()) return findGitDir(root);
  for (const sub of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) makeDirs(join(gitDir, sub));
  writeFileSync(join(gitDir, 'HEAD'), 'ref: refs/heads/main\n');
  const core = ['[core]', '\trepositoryformatversion = 0', '\tfilemode = true', `\tbare = ${options.bare ? 'true' : 'false'}`];
  if (!options.bare) core.push('\tlogallrefupdates = true');
  writeFileSync(join(gitDir, 'config'), `${core.join('\n')}\n`);
  writeFileSync(join(gitDir, 'description'), 'Unnamed repository; edit this file to name it.\n');
  return gitDir;
}
