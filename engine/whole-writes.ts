/**
 * Writes that a full disk cannot leave half done, and whose failures name their cause. One
 * `writeSync` may store fewer bytes than asked without an error (a nearly full disk takes what
 * fits and fails the next call), and a short write nobody noticed left a truncated object, pack
 * or ref file behind a valid name; a file written in place and cut short stays behind as
 * garbage that looks like data.
 *
 * @example
 *   writeAll(fd, compressed); // all of it, or an exception (ENOSPC, ...)
 *   writeAll(fd, header, 0); // at a position, as pwrite
 *   writeFileWhole(manifestPath, text); // the whole file under its name, or nothing
 *   removeLeftTemps(manifestPath); // what a killed writeFileWhole left beside it
 */
import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GatosError } from './errors.js';

export function writeAll(fd: number, data: Uint8Array | string, position?: number): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let done = 0;
  while (done < bytes.length) {
    const written = writeSync(fd, bytes, done, bytes.length - done, position === undefined ? null : position + done);
    // No progress and no error: report it as what it nearly always is, rather than spin.
    if (written === 0) throw new GatosError('disk_full', 'no space left on the device: a write stored nothing');
    done += written;
  }
}

let tempCounter = 0;
const tempOf = (path: string) => `${path}.tmp-${process.pid}-${tempCounter++}`;
const TEMP_SUFFIX = /^\.tmp-\d+-\d+$/;

/**
 * Puts `data` at `path` whole or not at all: written to a temporary file beside it, then renamed
 * (or, with `exclusive`, linked, so that an existing file is never replaced: EEXIST). Nothing is
 * left behind when it fails.
 */
export function writeFileWhole(path: string, data: Uint8Array | string, options: { mode?: number; exclusive?: boolean } = {}): void {
  const temp = tempOf(path);
  try {
    writeFileSync(temp, data, { mode: options.mode ?? 0o666, flag: 'wx' });
    if (options.exclusive) {
      linkSync(temp, path);
      unlinkSync(temp);
    } else renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Removes the temporary files `writeFileWhole` leaves beside `paths` when its process is killed
 * between writing and renaming. Only for callers that know no other process is writing them.
 */
export function removeLeftTemps(...paths: string[]): void {
  for (const path of paths) {
    const dir = dirname(path);
    const prefix = basename(path);
    for (const name of readdirSync(dir))
      if (name.startsWith(prefix) && TEMP_SUFFIX.test(name.slice(prefix.length))) rmSync(join(dir, name), { force: true });
  }
}

/**
 * `mkdir -p`. Node's recursive mkdir reports a read-only file system (or any refusal) as
 * ENOENT; on that error the first missing directory is made alone, which fails with the real
 * cause (EROFS, EACCES) — or succeeds, and the rest follows.
 */
export function makeDirs(path: string, mode?: number): void {
  const options = mode === undefined ? {} : { mode };
  try {
    mkdirSync(path, { ...options, recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    let missing = path;
    while (dirname(missing) !== missing && !existsSync(dirname(missing))) missing = dirname(missing);
    try {
      mkdirSync(missing, options);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
    }
    mkdirSync(path, { ...options, recursive: true });
  }
}
