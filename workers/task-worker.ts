/**
 * The piscina worker entry: decodes a task, calls the pure engine function, returns plain data
 * with its byte arrays moved (not copied) to the caller. Errors come back as data carrying their
 * code (see engine/scheduler/tasks.ts), so a GatosError survives the thread boundary.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { blake3HexOfFile, blake3Ready, contentId } from '../engine/codec/blake3.js';
import { canonicalBytes } from '../engine/codec/canonical-json.js';
import { environmentError, GatosError } from '../engine/errors.js';
import { adoptSharedIndexes } from '../engine/git/pack-index.js';
import type { PreparedObject } from '../engine/git/pack-writer.js';
import { openRepository, type Repository } from '../engine/git/repository.js';
import { scanRangeEncoded } from '../engine/scan/scan-range.js';
import { hashBatch } from '../engine/scheduler/hash-batch.js';
import type { CanonicalizeResult, ScanResult, SealEventsResult, Task, TaskResult, WorkerReply } from '../engine/scheduler/tasks.js';

/** Settles once the WASM hasher is ready; the entry (task-worker-entry.cts) awaits it before the first task. */
export const ready = blake3Ready();

/**
 * Loads a module on first use: a worker pays only for the task kinds it runs (exports load no
 * ledger code, no pack writer, and not piscina's pool code, which only moving buffers needs).
 */
function lazily<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}
const piscina = lazily(() => import('piscina'));
const packWriter = lazily(() => import('../engine/git/pack-writer.js'));
const exporterTasks = lazily(() => import('../exporter/shard-tasks.js'));
const eventObjects = lazily(() => import('../engine/ledger/event-objects.js'));
const fixtureChains = lazily(() => import('../fixtures/journal-chain.js'));

/** Repositories stay open between tasks: pack indexes are parsed once per worker. */
const repositories = new Map<string, Repository>();
function repositoryOf(gitDir: string): Repository {
  let repo = repositories.get(gitDir);
  if (!repo) {
    repo = openRepository(gitDir);
    repositories.set(gitDir, repo);
  }
  return repo;
}

function canonicalize(documents: string[]): CanonicalizeResult {
  const parts = documents.map((text) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new GatosError('invalid_json', `document is not JSON: ${(err as Error).message}`, {}, { cause: err });
    }
    return canonicalBytes(value);
  });
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((part, i) => {
    offsets[i + 1] = (offsets[i] as number) + part.length;
  });
  const canonical = new Uint8Array(offsets[parts.length] as number);
  parts.forEach((part, i) => {
    canonical.set(part, offsets[i]);
  });
  return { kind: 'canonicalize', canonical, offsets, ids: parts.map((part) => contentId(part)) };
}

function scan(task: Extract<Task, { kind: 'scan' }>): ScanResult {
  const step = scanRangeEncoded(repositoryOf(task.gitDir).objects, task.ref, task.frontier, task.limit);
  return { kind: 'scan', ref: task.ref, count: step.count, frontier: step.frontier, rows: step.rows };
}

async function sealEvents(task: Extract<Task, { kind: 'seal-events' }>): Promise<SealEventsResult> {
  const [{ sealEvent }, { packPrepared }] = await Promise.all([eventObjects(), packWriter()]);
  const keys = new Map(Object.entries(task.keys).map(([actor, pem]) => [actor, createPrivateKey(pem)]));
  const sealed = task.envelopes.map((envelope) => sealEvent(envelope, keys.get(envelope.actor) as KeyObject, task.level));
  return {
    kind: 'seal-events',
    cids: sealed.map((s) => s.cid),
    signatures: sealed.map((s) => s.signature),
    roots: sealed.map((s) => s.root),
    objects: packPrepared(sealed.flatMap((s) => s.objects as PreparedObject[])),
  };
}

async function execute(task: Task): Promise<TaskResult> {
  switch (task.kind) {
    case 'hash':
      return { kind: 'hash', digests: hashBatch(task.algo, task.data, task.offsets) };
    case 'hash-files':
      return { kind: 'hash-files', files: task.paths.map((path) => blake3HexOfFile(path)) };
    case 'canonicalize':
      return canonicalize(task.documents);
    case 'scan':
      return scan(task);
    case 'fixture-chunk':
      return (await fixtureChains()).buildFixtureChunk(task);
    case 'seal-events':
      return sealEvents(task);
    case 'prepare-objects': {
      const { packPrepared, prepareRaw, unpackRawObjects } = await packWriter();
      return {
        kind: 'prepare-objects',
        objects: packPrepared(Array.from(unpackRawObjects(task.objects), (raw) => prepareRaw(raw, task.level))),
      };
    }
    case 'export-journal':
    case 'export-messages': {
      const tasks = await exporterTasks();
      if (task.indexes) adoptSharedIndexes(task.indexes);
      const repo = repositoryOf(task.gitDir);
      return task.kind === 'export-journal' ? tasks.exportJournalRows(repo, task) : tasks.exportMessageRows(repo, task);
    }
    case 'export-parquet-table':
    case 'export-sqlite-table': {
      const tasks = await exporterTasks();
      // Writing tables comes after reading: pack windows and shared indexes are let go (a later
      // read reopens them), so they do not add to the memory the table's encoding needs.
      for (const repo of repositories.values()) repo.close();
      repositories.clear();
      return task.kind === 'export-parquet-table' ? tasks.exportParquetTable(task) : tasks.exportSqliteTable(task);
    }
  }
}

/** The byte arrays of a result, to be moved rather than copied. */
function transferables(result: TaskResult): ArrayBuffer[] {
  const views: Uint8Array[] = [];
  if (result.kind === 'hash') views.push(result.digests);
  if (result.kind === 'canonicalize') views.push(result.canonical, new Uint8Array(result.offsets.buffer));
  if (result.kind === 'scan') views.push(result.rows);
  if (result.kind === 'fixture-chunk' || result.kind === 'seal-events' || result.kind === 'prepare-objects') views.push(result.objects);
  // Only whole, unshared buffers can move; anything else is copied.
  return views
    .filter((view) => view.byteOffset === 0 && view.byteLength === view.buffer.byteLength)
    .map((view) => view.buffer as ArrayBuffer);
}

export default async function run(task: Task): Promise<unknown> {
  let result: TaskResult;
  try {
    result = await execute(task);
  } catch (err) {
    const error =
      err instanceof GatosError
        ? err
        : (environmentError(err) ??
          new GatosError('worker_failed', `worker task ${task.kind} failed: ${(err as Error).message}`, { task: task.kind }));
    return { ok: false, error: error.toJSON() } satisfies WorkerReply;
  }
  const reply = { ok: true, result } satisfies WorkerReply;
  const buffers = transferables(result);
  if (buffers.length === 0) return reply;
  // Piscina moves the listed buffers only for values marked through Piscina.move().
  const { Piscina } = await piscina();
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return buffers;
    },
    get [Piscina.valueSymbol]() {
      return reply;
    },
  } as unknown as ArrayBuffer);
}
