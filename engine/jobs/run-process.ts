/**
 * Runs a job's command as the leader of a new process group, so that a timeout or a cancel
 * reaches everything the command started: SIGTERM to the group, SIGKILL after a grace period.
 * When the leader exits, what is left of its group is killed too (no orphans hold the pipes).
 * stdout and stderr are kept up to a cap each and drained past it. This is not a sandbox: the
 * command runs with the worker's user and file system (docs/guide/job-plane.md).
 */
import { spawn } from 'node:child_process';
import type { Clock } from '../ledger/clock.js';

export interface RunSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** 0 = no limit. */
  timeoutMs: number;
  /** Bytes kept per stream. */
  outputCap: number;
  /** Time between SIGTERM and SIGKILL. */
  graceMs?: number;
}

export interface RunOutcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Why the command could not start (e.g. `spawn /x ENOENT`). */
  error?: string;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  startedAt: number;
  finishedAt: number;
}

class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** Runs `spec`; resolves when the command and its pipes are done. `signal` cancels it. */
export function runProcess(spec: RunSpec, clock: Clock, signal?: AbortSignal): Promise<RunOutcome> {
  const startedAt = clock();
  const stdout = new CappedBuffer(spec.outputCap);
  const stderr = new CappedBuffer(spec.outputCap);
  return new Promise((resolve) => {
    let timedOut = false;
    let cancelled = false;
    let exit: { code: number | null; signal: string | null } | undefined;
    let error: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn(spec.argv[0] as string, spec.argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stop = (why: 'timeout' | 'cancel') => {
      if (exit || error) return;
      if (why === 'timeout') timedOut = true;
      else cancelled = true;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), spec.graceMs ?? 2000);
    };
    const timer = spec.timeoutMs > 0 ? setTimeout(() => stop('timeout'), spec.timeoutMs) : undefined;
    const onAbort = () => stop('cancel');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        cancelled,
        ...(error ? { error } : {}),
        stdout: stdout.bytes(),
        stderr: stderr.bytes(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
        startedAt,
        finishedAt: clock(),
      });
    };
    child.on('error', (err) => {
      error = err.message;
      finish();
    });
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig };
      // Whatever the command left running in its group goes with it.
      killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', finish);
  });
}
