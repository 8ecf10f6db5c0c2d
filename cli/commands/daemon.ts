import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { openRepository } from '../../engine/git/repository.js';
import { clockFromEnv } from '../../engine/ledger/clock.js';
import { type PruneFact, pruneChannel, type RotationFact, rotationChannel } from '../../engine/messages/diagnostics.js';
import { makeDirs } from '../../engine/whole-writes.js';
import type { Command } from '../command.js';
import { MessageMetrics } from '../daemon/metrics.js';
import { RpcSession } from '../daemon/rpc.js';

/** Whether something accepts connections on the unix socket at `path`. */
export function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Makes room for the socket: a socket left by a daemon that is gone is removed; anything else
 * there (a file, a directory, a daemon still answering) is refused rather than deleted.
 */
async function clearSocketPath(path: string): Promise<void> {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isSocket())
    throw new GatosError('invalid_argument', `--socket ${path} exists and is not a socket; choose another path`, { path });
  if (await answering(path))
    throw new GatosError('socket_in_use', `a daemon is already serving ${path}; stop it first, or choose another --socket`, { path });
  rmSync(path, { force: true });
}

const USAGE = [
  'usage: gatos daemon [--stdio] [--socket PATH] [--repo P]   (also installed as gatosd)',
  '',
  '  JSONL RPC: one JSON request per line, replies as JSON lines; methods messages.publish,',
  '  messages.read, messages.checkpoint, messages.subscribe, messages.prune, jobs.enqueue, jobs.ls,',
  '  jobs.show, jobs.cancel, jobs.watch, metrics, ping.',
  '  --stdio    serve standard input/output (ends at EOF)',
  '  --socket   unix socket to serve (default <git-dir>/gatos/gatosd.sock, mode 0600)',
  '  Structured logs go to stderr as JSON lines.',
].join('\n');

function log(event: string, data: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), event, ...data })}\n`);
}

export const daemonCommand: Command = {
  name: 'daemon',
  usage: USAGE,
  options: { stdio: { type: 'boolean' }, socket: { type: 'string' } },
  async run(ctx) {
    await blake3Ready();
    const repo = openRepository(ctx.repo);
    const bus = { objects: repo.objects, refs: repo.refs, clock: clockFromEnv() };
    const metrics = new MessageMetrics(bus);
    // Rotations and prunes are logged with what happened and why (spec §5).
    rotationChannel.subscribe((fact) => log('segment_rotated', fact as RotationFact & Record<string, unknown>));
    pruneChannel.subscribe((fact) => {
      const { topic, pruned, gating_checkpoint_ulid } = fact as PruneFact;
      for (const segment of pruned) log('segment_pruned', { topic, ...segment, gating_checkpoint_ulid });
    });
    if (ctx.values.stdio) {
      const session = new RpcSession(bus, (frame) => process.stdout.write(`${JSON.stringify(frame)}\n`), metrics);
      const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
      let chain = Promise.resolve();
      for await (const line of lines) chain = chain.then(() => session.handleLine(line));
      await chain;
      session.close();
      repo.close();
      return 0;
    }
    const path = typeof ctx.values.socket === 'string' ? ctx.values.socket : join(repo.gitDir, 'gatos', 'gatosd.sock');
    makeDirs(dirname(path), 0o700);
    await clearSocketPath(path);
    const server = createServer((socket) => {
      const session = new RpcSession(bus, (frame) => socket.write(`${JSON.stringify(frame)}\n`), metrics);
      const lines = createInterface({ input: socket, crlfDelay: Number.POSITIVE_INFINITY });
      let chain = Promise.resolve();
      lines.on('line', (line) => {
        chain = chain.then(() => session.handleLine(line));
      });
      socket.on('close', () => session.close());
      socket.on('error', (err) => log('connection_error', { message: err.message }));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    chmodSync(path, 0o600);
    log('listening', { socket: path, git_dir: repo.gitDir });
    await new Promise<void>((resolve) => {
      const stop = () => {
        log('stopping');
        server.close(() => resolve());
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    rmSync(path, { force: true });
    repo.close();
    return 0;
  },
};
