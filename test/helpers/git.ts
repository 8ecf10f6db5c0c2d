/** Test helpers: temporary repositories and stock git as the oracle. */
import { type ExecFileSyncOptions, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_AUTHOR_DATE: '1700000000 +0000',
  GIT_COMMITTER_DATE: '1700000000 +0000',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

/** Runs git in `cwd` and returns stdout as a string (trailing newline kept). */
export function git(cwd: string, args: string[], input?: string | Buffer): string {
  const options: ExecFileSyncOptions = { cwd, env: GIT_ENV, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] };
  if (input !== undefined) options.input = input;
  return execFileSync('git', args, options).toString('utf8');
}

/** Runs git and returns raw stdout bytes. */
export function gitBytes(cwd: string, args: string[], input?: string | Buffer): Buffer {
  const options: ExecFileSyncOptions = { cwd, env: GIT_ENV, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] };
  if (input !== undefined) options.input = input;
  return execFileSync('git', args, options) as Buffer;
}

export function tempDir(prefix = 'gatos-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A fresh `git init` work tree; returns its root. */
export function tempRepo(): string {
  const dir = tempDir();
  git(dir, ['init', '-q', '-b', 'main']);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The entries `git verify-pack -v` lists for a pack index: id, type and offset in the pack, in pack order. */
export function packEntries(cwd: string, idxPath: string): Array<{ oid: string; type: string; offset: number }> {
  return git(cwd, ['verify-pack', '-v', idxPath])
    .split('\n')
    .map((line) => line.split(/\s+/))
    .filter((fields) => /^[0-9a-f]{40}$/.test(fields[0] ?? '') && fields.length >= 5)
    .map((fields) => ({ oid: fields[0] as string, type: fields[1] as string, offset: Number(fields[4]) }));
}

/** `git fsck --strict`; throws (with git's output) when it reports anything. */
export function fsckStrict(cwd: string): void {
  git(cwd, ['fsck', '--strict', '--no-dangling']);
}

/** Environment for git child processes, fixed identity and dates. */
export const gitEnv = GIT_ENV;

/**
 * Temporary directories and repositories for one test file, removed after its tests finish.
 * Call at the top level of the file (it registers an `after` hook).
 */
export function scratch(): { repo(): string; dir(): string } {
  const made: string[] = [];
  after(() => {
    for (const dir of made) removeDir(dir);
  });
  const keep = (dir: string): string => {
    made.push(dir);
    return dir;
  };
  return { repo: () => keep(tempRepo()), dir: () => keep(tempDir()) };
}
