/**
 * `writeSync` until every byte is down. One write may store fewer bytes than asked without an
 * error (a nearly full disk takes what fits and fails the next call), and a short write nobody
 * noticed left a truncated object, pack or ref file behind a valid name.
 *
 * @example
 *   writeAll(fd, compressed); // all of it, or an exception (ENOSPC, ...)
 *   writeAll(fd, header, 0); // at a position, as pwrite
 */
import { writeSync } from 'node:fs';
import { GatosError } from '../errors.js';

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
