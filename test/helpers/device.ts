import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TestContext } from 'node:test';

/** A tmpfs mounted for one test: a real device that fills up, or refuses writes. */
export interface SmallDevice {
  readonly dir: string;
  /** Bytes still free on it. */
  free(): number;
  /** Takes all the free space but `leftBytes` with a file named `filler` (rewritten each call). */
  fill(leftBytes: number): void;
  /** Removes the filler. */
  empty(): void;
  /** The files on it (directories left out), relative to `dir`, sorted. */
  files(): string[];
  /** From now on refuses writes (EROFS), keeping what it holds. */
  makeReadOnly(): void;
}

/**
 * Runs `body` with a tmpfs of `size` bytes mounted (read-only with `readOnly`) and unmounts it
 * after; skips the test where this process may not mount (not root, no CAP_SYS_ADMIN).
 */
export async function onSmallDevice(
  t: TestContext,
  size: number,
  body: (device: SmallDevice) => unknown,
  options: { readOnly?: boolean } = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gatos-device-'));
  const mount = ['-t', 'tmpfs', '-o', `size=${size}${options.readOnly ? ',ro' : ''}`, 'tmpfs', dir];
  if (spawnSync('mount', mount, { stdio: 'ignore' }).status !== 0) {
    rmdirSync(dir);
    t.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)');
    return;
  }
  const filler = join(dir, 'filler');
  const fillerSize = () => statSync(filler, { throwIfNoEntry: false })?.size ?? 0;
  const device: SmallDevice = {
    dir,
    free: () => {
      const { bavail, bsize } = statfsSync(dir);
      return bavail * bsize;
    },
    fill: (leftBytes) => writeFileSync(filler, Buffer.alloc(Math.max(0, device.free() + fillerSize() - leftBytes))),
    empty: () => rmSync(filler, { force: true }),
    files: () =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => relative(dir, join(entry.path, entry.name)))
        .sort(),
    makeReadOnly: () => {
      if (spawnSync('mount', ['-o', 'remount,ro', dir], { stdio: 'ignore' }).status !== 0)
        throw new Error(`could not remount ${dir} read-only`);
    },
  };
  try {
    await body(device);
  } finally {
    // Lazily: a file still open there (a leak the test reports itself) must not keep it mounted.
    spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
    rmdirSync(dir);
  }
}
