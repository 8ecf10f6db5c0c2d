/**
 * An export's claim on its output path: `<out>.lock`, created exclusively, naming the process
 * that holds it. Two exports to one path (an overlapping cron job, a second terminal) would
 * otherwise remove each other's temporary files and could leave a manifest that describes
 * neither. A lock whose process is gone (a killed export) is taken over; one held on another
 * host is never judged from here.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { GatosError } from '../engine/errors.js';

/** Whether process `pid` exists on this host (EPERM: it does, owned by someone else). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a lock file says (its holder's `pid host`); a moment's grace for one just created; undefined once gone. */
function holderOf(path: string): string | undefined {
  for (let look = 0; ; look++) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (text !== '' || look === 1) return text;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/** Takes `<out>.lock` or fails with `export_locked`; returns the release (safe to call again). */
export function lockOutput(out: string): () => void {
  const path = `${out}.lock`;
  const host = hostname();
  for (;;) {
    try {
      writeFileSync(path, `${process.pid} ${host}\n`, { flag: 'wx' });
      let held = true;
      return () => {
        if (held) rmSync(path, { force: true });
        held = false;
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = holderOf(path);
    if (text === undefined) continue; // released meanwhile
    const [pidText = '', holderHost = ''] = text.split(' ');
    const pid = Number.parseInt(pidText, 10);
    // Still empty after a moment: its writer died as it created it, so it is stale.
    if (text !== '' && (holderHost !== host || alive(pid)))
      throw new GatosError(
        'export_locked',
        `another export (pid ${pidText} on ${holderHost || 'an unknown host'}) is writing ${out}; wait for it to end, or remove ${path} if it is gone`,
        { out, pid: pidText, host: holderHost },
      );
    // Left by an export that died: taken over (if another process takes it first, the loop sees its lock).
    rmSync(path, { force: true });
  }
}
