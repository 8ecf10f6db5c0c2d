/**
 * The JSONL RPC of `gatos daemon` (the backlog's gatosd): one JSON request per line, one or more
 * JSON lines back. Requests may use `{"method","params","id"}`, `{"type",...,"id"}` or
 * `{"type","args","request_id"}`; every reply echoes `id`. Errors are
 * `{"ok":false,"id","code","status","reason"}`; a malformed line gets an error frame, never a
 * crash. A thin front-end: each method calls the engine's message or job plane; `metrics`
 * returns the Prometheus text of the daemon's registry. `messages.subscribe` and `jobs.watch`
 * ack, then stream frames until the connection closes.
 */
import { asGatosError, GatosError } from '../../engine/errors.js';
import { enqueue } from '../../engine/jobs/enqueue.js';
import { EVENTS_TOPIC } from '../../engine/jobs/events.js';
import { cancel } from '../../engine/jobs/lifecycle.js';
import { checkManifest } from '../../engine/jobs/manifest.js';
import { type JobStatus, jobView, listJobs, readJob, resolveJobId, STATUSES } from '../../engine/jobs/store.js';
import { writeCheckpoint } from '../../engine/messages/checkpoint.js';
import { prune } from '../../engine/messages/prune.js';
import { type Bus, type DraftEnvelope, publish } from '../../engine/messages/publish.js';
import type { ReadMessage } from '../../engine/messages/read.js';
import { readMessages } from '../../engine/messages/read.js';
import { type Subscription, subscribe } from '../../engine/messages/subscribe.js';
import { assertTopic } from '../../engine/messages/topics.js';
import type { MessageMetrics } from './metrics.js';

export type Send = (frame: Record<string, unknown>) => void;

const STATUS: Record<string, number> = {
  topic_not_found: 404,
  invalid_ulid: 400,
  invalid_topic: 400,
  invalid_envelope: 400,
  invalid_request: 400,
  invalid_argument: 400,
  limit_out_of_range: 409,
  head_conflict: 409,
  ulid_not_monotonic: 409,
  checkpoint_backwards: 409,
  unknown_method: 404,
  invalid_manifest: 400,
  job_not_found: 404,
  job_finished: 409,
  claim_conflict: 409,
  disk_full: 507,
  permission_denied: 403,
};

interface Request {
  id: unknown;
  method: string;
  params: Record<string, unknown>;
}

function parseRequest(line: string): Request {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new GatosError('invalid_request', `not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new GatosError('invalid_request', 'a request is a JSON object');
  const raw = value as Record<string, unknown>;
  const id = raw.id ?? raw.request_id ?? null;
  const method = raw.method ?? raw.type ?? raw.kind;
  if (typeof method !== 'string') throw Object.assign(new GatosError('invalid_request', 'missing "method" (or "type")'), { requestId: id });
  const { id: _i, request_id: _r, method: _m, type: _t, kind: _k, params, args, ...flat } = raw;
  const body = (params ?? args ?? flat) as Record<string, unknown>;
  if (body === null || typeof body !== 'object')
    throw Object.assign(new GatosError('invalid_request', '"params" must be an object'), { requestId: id });
  return { id, method, params: body };
}

function errorFrame(id: unknown, err: unknown): Record<string, unknown> {
  const error = asGatosError(err);
  return { ok: false, id, code: error.code, status: STATUS[error.code] ?? (error.kind === 'internal' ? 500 : 400), reason: error.message };
}

const str = (params: Record<string, unknown>, key: string): string | undefined =>
  typeof params[key] === 'string' ? (params[key] as string) : undefined;

function requireString(params: Record<string, unknown>, key: string): string {
  const value = str(params, key);
  if (value === undefined) throw new GatosError('invalid_request', `params.${key} is required`);
  return value;
}

/** A connection's state: its live subscriptions, stopped when it closes. */
export class RpcSession {
  private readonly subscriptions = new Set<Subscription>();

  constructor(
    private readonly bus: Bus,
    private readonly send: Send,
    private readonly metrics?: MessageMetrics,
    private readonly pollMs = 25,
  ) {}

  async handleLine(line: string): Promise<void> {
    if (line.trim() === '') return;
    let request: Request;
    try {
      request = parseRequest(line);
    } catch (err) {
      this.send(errorFrame((err as { requestId?: unknown }).requestId ?? null, err));
      return;
    }
    try {
      await this.dispatch(request);
    } catch (err) {
      this.send(errorFrame(request.id, err));
    }
  }

  private async dispatch({ id, method, params }: Request): Promise<void> {
    switch (method) {
      case 'ping':
        this.send({ kind: 'pong', id });
        return;
      case 'messages.publish': {
        const envelopes = (Array.isArray(params.envelopes) ? params.envelopes : [params.envelope]) as DraftEnvelope[];
        if (envelopes.some((e) => e === undefined)) throw new GatosError('invalid_request', 'params.envelope (or envelopes) is required');
        const receipts = await publish(this.bus, requireString(params, 'topic'), envelopes);
        const last = receipts[receipts.length - 1];
        this.send({ ok: true, id, commit_id: last?.commit, content_id: last?.content_id, ulid: last?.ulid, receipts });
        return;
      }
      case 'messages.read': {
        const topic = requireString(params, 'topic');
        const options: { since?: string; limit?: number } = {};
        const since = str(params, 'since_ulid');
        if (since !== undefined) options.since = since;
        if (params.limit !== undefined) options.limit = Number(params.limit);
        const page = readMessages(this.bus, topic, options);
        const group = str(params, 'checkpoint_group');
        const last = page.messages[page.messages.length - 1];
        if (group && last) {
          writeCheckpoint(this.bus, group, topic, { ulid: last.ulid, commit: last.commit });
          page.checkpoint_hint = { group, topic };
        }
        this.send({ ok: true, id, ...page });
        return;
      }
      case 'messages.checkpoint': {
        const commit = str(params, 'commit');
        const ulid = requireString(params, 'ulid');
        const result = writeCheckpoint(
          this.bus,
          requireString(params, 'group'),
          requireString(params, 'topic'),
          commit ? { ulid, commit } : { ulid },
        );
        this.send({ ok: true, id, ...result });
        return;
      }
      case 'messages.prune': {
        const days = params.retention_days === undefined ? 30 : Number(params.retention_days);
        const result = prune(this.bus, requireString(params, 'topic'), {
          retentionMs: days * 24 * 3600 * 1000,
          dryRun: params.dry_run === true,
        });
        this.send({ ok: true, id, ...result });
        return;
      }
      case 'metrics':
        if (!this.metrics) throw new GatosError('unknown_method', 'metrics are not enabled on this connection');
        this.send({ ok: true, id, content_type: this.metrics.registry.contentType, text: await this.metrics.text() });
        return;
      case 'messages.subscribe': {
        const topic = requireString(params, 'topic');
        this.subscribe(id, topic, str(params, 'since_ulid'), (message, envelope) => ({
          type: 'bus.message',
          id,
          topic,
          ulid: message.ulid,
          commit: message.commit,
          content_id: message.content_id,
          payload: envelope.payload,
        }));
        return;
      }
      case 'jobs.enqueue': {
        const raw = Array.isArray(params.manifests) ? params.manifests : [params.manifest];
        if (raw.some((m) => m === undefined)) throw new GatosError('invalid_request', 'params.manifest (or manifests) is required');
        const options: Parameters<typeof enqueue>[2] = {};
        if (str(params, 'ns') !== undefined) options.ns = str(params, 'ns') as string;
        if (params.max_attempts !== undefined) options.maxAttempts = Number(params.max_attempts);
        if (params.retry_backoff_ms !== undefined) options.backoffMs = Number(params.retry_backoff_ms);
        const receipts = await enqueue(this.bus, raw.map(checkManifest), options);
        this.send(Array.isArray(params.manifests) ? { ok: true, id, jobs: receipts } : { ok: true, id, ...receipts[0] });
        return;
      }
      case 'jobs.ls': {
        const status = str(params, 'status');
        if (status !== undefined && !STATUSES.includes(status as JobStatus))
          throw new GatosError('invalid_request', `params.status must be one of ${STATUSES.join(', ')}`);
        this.send({ ok: true, id, jobs: listJobs(this.bus.objects, this.bus.refs, this.bus.clock(), status as JobStatus | undefined) });
        return;
      }
      case 'jobs.show': {
        const hex = resolveJobId(this.bus.objects, this.bus.refs, requireString(params, 'job_id'));
        const manifest = readJob(this.bus.objects, this.bus.refs, hex)?.manifest;
        this.send({ ok: true, id, ...jobView(this.bus.objects, this.bus.refs, hex, this.bus.clock()), manifest });
        return;
      }
      case 'jobs.cancel': {
        const job = readJob(
          this.bus.objects,
          this.bus.refs,
          resolveJobId(this.bus.objects, this.bus.refs, requireString(params, 'job_id')),
        );
        if (!job) throw new GatosError('job_not_found', 'no such job');
        const commit = await cancel(this.bus, job, str(params, 'reason') ?? 'cancelled', str(params, 'by') ?? 'service:gatosd');
        this.send({ ok: true, id, job_id: job.id, status: 'aborted', commit });
        return;
      }
      case 'jobs.watch':
        this.subscribe(id, EVENTS_TOPIC, str(params, 'since_ulid'), (message, envelope) => ({
          type: 'jobs.event',
          id,
          ulid: message.ulid,
          event: envelope.type,
          ...envelope.payload,
        }));
        return;
      default:
        throw new GatosError('unknown_method', `unknown method ${JSON.stringify(method)}`, { method });
    }
  }

  /** Acks, then streams one frame per message after the cursor, as they come. */
  private subscribe(
    id: unknown,
    topic: string,
    since: string | undefined,
    frame: (message: ReadMessage, envelope: { type: string; payload: Record<string, unknown> }) => Record<string, unknown>,
  ): void {
    assertTopic(topic);
    this.send({ ack: true, id });
    const subscription = subscribe(
      this.bus,
      topic,
      since,
      (message) => this.send(frame(message, JSON.parse(Buffer.from(message.canonical_json, 'base64').toString('utf8')))),
      (err) => this.send(errorFrame(id, err)),
      this.pollMs,
    );
    this.subscriptions.add(subscription);
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.stop();
    this.subscriptions.clear();
  }
}
