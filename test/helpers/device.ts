import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tmpfs mounted for one test: a real device that fills up, or refuses writes. */
export interface SmallDevice {
  readonly dir: string;
  /** From now on refuses writes (EROFS), keeping what it holds. */
  makeReadOnly(): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `size` bytes (read-only with `readOnly`), or returns undefined where this
 * process may not mount (not root, no CAP_SYS_ADMIN): the caller skips its test then.
 */
export function smallDevice(size: number, readOnly = false): SmallDevice | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'gatos-device-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'ignore' });
  if (mounted.status !== 0) {
    rmdirSync(dir);
    return undefined;
  }
  return {
    dir,
    makeReadOnly() {
      const remounted = spawnSync('mount', ['-o', 'remount,ro', dir], { stdio: 'ignore' });
      if (remounted.status !== 0) throw new Error(`could not remount ${dir} read-only`);
    },
    unmount() {
      // Lazily: a file still open there (a leak the test reports itself) must not keep it mounted.
      spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
      rmdirSync(dir);
    },
  };
}

export const MOUNT_NEEDED = 'mounting a tmpfs needs root (CAP_SYS_ADMIN)';
