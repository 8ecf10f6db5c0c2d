import { basename, dirname } from 'node:path';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { parseJson } from '../../engine/codec/canonical-json.js';
import { GatosError } from '../../engine/errors.js';
import type { Repository } from '../../engine/git/repository.js';
import { type EnqueueOptions, enqueue } from '../../engine/jobs/enqueue.js';
import { EVENTS_TOPIC } from '../../engine/jobs/events.js';
import { cancel } from '../../engine/jobs/lifecycle.js';
import { checkManifest, type JobManifest, parseManifestText } from '../../engine/jobs/manifest.js';
import { verifyJob } from '../../engine/jobs/proof.js';
import { type JobStatus, type JobView, jobView, listJobs, readJob, resolveJobId, STATUSES } from '../../engine/jobs/store.js';
import { runWorker, type WorkerEvent } from '../../engine/jobs/worker.js';
import type { Ledger } from '../../engine/ledger/context.js';
import { subscribe } from '../../engine/messages/subscribe.js';
import { type Command, type CommandContext, intFlag, readInputText, requiredFlag, stringFlag } from '../command.js';
import { openLedger } from './ledger-context.js';

const USAGE = [
  'usage: gatos jobs enqueue --command JSON|PATH --timeout SECS|ISO8601 [--args JSON] [--env K=V]... [--cwd DIR]',
  '                          [--input blake3:<hex>]... [--policy-root sha256:<hex>] [--ns NS] [--json]',
  '       gatos jobs enqueue --manifest FILE.yaml | --file JOBS.jsonl   (one manifest per line)',
  '           [--max-attempts N (3)] [--retry-backoff-ms MS (1000)]',
  '       gatos jobs work --worker-id W [--concurrency N] [--once] [--max-jobs N] [--exit-when-idle]',
  '                       [--lease SECS (30)] [--workdir DIR] [--output-cap BYTES] [--json]',
  '           runs jobs until Ctrl-C; --once (= --max-jobs 1) and --max-jobs wait for jobs to come,',
  '           --exit-when-idle stops when none is pending',
  '       gatos jobs ls [--status pending|claimed|running|succeeded|failed|aborted] [--json]',
  '       gatos jobs show JOB [--json]          JOB: blake3:<hex>, hex, a unique 8+ digit prefix, or the ULID alias',
  '       gatos jobs watch [--since ULID] [--json]   (live transitions until Ctrl-C)',
  '       gatos jobs cancel JOB [--reason TEXT] [--json]',
  '       gatos jobs verify JOB [--json]        exit 1 when any check fails',
].join('\n');

function jsonFlag(ctx: CommandContext, name: string): unknown {
  const text = requiredFlag(ctx, name, USAGE);
  try {
    return parseJson(text);
  } catch (err) {
    throw new GatosError('invalid_json', `--${name}: ${(err as Error).message}`);
  }
}

function manifestFromFlags(ctx: CommandContext): JobManifest {
  const commandText = requiredFlag(ctx, 'command', USAGE);
  const raw: Record<string, unknown> = {
    // A bare path is a one-word command; anything starting with `[` is a JSON array.
    command: commandText.trimStart().startsWith('[') ? jsonFlag(ctx, 'command') : [commandText],
    timeout: /^\d+$/.test(requiredFlag(ctx, 'timeout', USAGE)) ? Number(stringFlag(ctx, 'timeout')) : stringFlag(ctx, 'timeout'),
  };
  if (stringFlag(ctx, 'args') !== undefined) raw.args = jsonFlag(ctx, 'args');
  const env = (ctx.values.env as string[] | undefined) ?? [];
  if (env.length > 0) {
    raw.env = Object.fromEntries(
      env.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new GatosError('invalid_manifest', `--env takes NAME=VALUE, got ${JSON.stringify(pair)}`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    );
  }
  const cwd = stringFlag(ctx, 'cwd');
  if (cwd !== undefined) raw.cwd = cwd;
  const inputs = (ctx.values.input as string[] | undefined) ?? [];
  if (inputs.length > 0) raw.inputs = inputs.map((hash) => ({ kind: 'blobptr', algo: 'blake3', hash }));
  const policyRoot = stringFlag(ctx, 'policy-root');
  if (policyRoot !== undefined) raw.policy_root = policyRoot;
  return checkManifest(raw);
}

function manifests(ctx: CommandContext): JobManifest[] {
  const manifest = stringFlag(ctx, 'manifest');
  if (manifest !== undefined) return [parseManifestText(readInputText(manifest))];
  const file = stringFlag(ctx, 'file');
  if (file === undefined) return [manifestFromFlags(ctx)];
  return readInputText(file)
    .split('\n')
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, i }) => {
      try {
        return checkManifest(parseJson(line));
      } catch (err) {
        throw new GatosError((err as GatosError).code ?? 'invalid_json', `${file}:${i + 1}: ${(err as Error).message}`);
      }
    });
}

function describe(view: JobView): string {
  const parts = [view.job_id, view.status.padEnd(9), `attempt ${view.attempt}/${view.max_attempts}`];
  if (view.worker) parts.push(`worker ${view.worker}`);
  if (view.exit_code !== undefined) parts.push(`exit ${view.exit_code}`);
  if (view.not_before) parts.push(`retry at ${view.not_before}`);
  if (view.stale_claim) parts.push('(stale claim)');
  if (view.reason) parts.push(`(${view.reason})`);
  return parts.join('  ');
}

/** Follows the events topic until SIGINT/SIGTERM. */
function watch(ctx: CommandContext, ledger: Ledger): Promise<number> {
  return new Promise((resolve, reject) => {
    const subscription = subscribe(
      ledger,
      EVENTS_TOPIC,
      stringFlag(ctx, 'since'),
      (message) => {
        const envelope = parseJson(Buffer.from(message.canonical_json, 'base64').toString('utf8')) as {
          type: string;
          payload: Record<string, unknown>;
        };
        const p = envelope.payload;
        const line = ctx.out.json
          ? JSON.stringify({ ulid: message.ulid, type: envelope.type, ...p })
          : [message.ulid, envelope.type.padEnd(14), p.job_id, p.attempt !== undefined ? `attempt ${p.attempt}` : '', p.worker ?? '']
              .concat(p.exit_code !== undefined ? [`exit ${p.exit_code}`] : [], p.reason !== undefined ? [`(${p.reason})`] : [])
              .filter((x) => x !== '')
              .join(' ');
        process.stdout.write(`${line}\n`);
      },
      (err) => {
        subscription.stop();
        reject(err);
      },
    );
    const stop = () => {
      subscription.stop();
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

async function work(ctx: CommandContext, repo: Repository, ledger: Ledger): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const lease = intFlag(ctx, 'lease', 1) ?? 30;
  const concurrency = intFlag(ctx, 'concurrency', 1) ?? 1;
  const maxJobs = ctx.values.once === true ? 1 : intFlag(ctx, 'max-jobs');
  const outputCap = intFlag(ctx, 'output-cap');
  const gitDir = repo.gitDir;
  const onEvent = (event: WorkerEvent) => {
    if (ctx.out.json) process.stdout.write(`${JSON.stringify(event)}\n`);
    else if (event.event !== 'conflict') {
      const extra = [
        event.attempt !== undefined ? `attempt ${event.attempt}` : '',
        event.exit_code != null ? `exit ${event.exit_code}` : '',
      ];
      process.stderr.write(`${[event.event.padEnd(9), event.job_id ?? '', ...extra, event.detail ?? ''].filter(Boolean).join(' ')}\n`);
    }
  };
  try {
    const summary = await runWorker(ledger, {
      worker: requiredFlag(ctx, 'worker-id', USAGE),
      concurrency,
      leaseMs: lease * 1000,
      exitWhenIdle: ctx.values['exit-when-idle'] === true,
      workdir: stringFlag(ctx, 'workdir') ?? (basename(gitDir) === '.git' ? dirname(gitDir) : gitDir),
      signal: controller.signal,
      onEvent,
      ...(maxJobs !== undefined ? { maxJobs } : {}),
      ...(outputCap !== undefined ? { outputCap } : {}),
    });
    ctx.out.result(
      { summary },
      `worker ${summary.worker}: ${summary.started} started, ${summary.succeeded} succeeded, ${summary.failed} failed, ${summary.retried} retried, ${summary.lost} lost`,
    );
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function run(ctx: CommandContext, repo: Repository, ledger: Ledger): Promise<number> {
  const [sub, target] = ctx.positionals;
  const jobArg = () => {
    if (!target) throw new GatosError('usage', `gatos jobs ${sub} needs a job id\n\n${USAGE}`);
    return resolveJobId(ledger.objects, ledger.refs, target);
  };
  switch (sub) {
    case 'enqueue': {
      const options: EnqueueOptions = {
        onAnnounceError: (err) =>
          process.stderr.write(`gatos: warning: the job is enqueued but not announced: ${(err as Error).message}\n`),
      };
      const ns = stringFlag(ctx, 'ns');
      const maxAttempts = intFlag(ctx, 'max-attempts');
      const backoff = intFlag(ctx, 'retry-backoff-ms');
      if (ns !== undefined) options.ns = ns;
      if (maxAttempts !== undefined) options.maxAttempts = maxAttempts;
      if (backoff !== undefined) options.backoffMs = backoff;
      const receipts = await enqueue(ledger, manifests(ctx), options);
      if (receipts.length === 1 && stringFlag(ctx, 'file') === undefined) {
        const [r] = receipts as [(typeof receipts)[number]];
        ctx.out.result(
          { job_id: r.job_id, commit: r.commit, ulid: r.ulid, created: r.created },
          `${r.created ? 'enqueued' : 'already enqueued'} ${r.job_id}\ncommit ${r.commit}  alias ${r.ulid}`,
        );
      } else {
        const created = receipts.filter((r) => r.created).length;
        ctx.out.result({ enqueued: created, jobs: receipts }, `enqueued ${created} job(s), ${receipts.length - created} already present`);
      }
      return 0;
    }
    case 'work':
      return work(ctx, repo, ledger);
    case 'ls': {
      const status = stringFlag(ctx, 'status');
      if (status !== undefined && !STATUSES.includes(status as JobStatus))
        throw new GatosError('invalid_argument', `--status must be one of ${STATUSES.join(', ')}`);
      const jobs = listJobs(ledger.objects, ledger.refs, ledger.clock(), status as JobStatus | undefined);
      ctx.out.result({ jobs }, jobs.map(describe).join('\n') || 'no jobs');
      return 0;
    }
    case 'show': {
      const hex = jobArg();
      const view = jobView(ledger.objects, ledger.refs, hex, ledger.clock());
      const manifest = readJob(ledger.objects, ledger.refs, hex)?.manifest;
      ctx.out.result({ ...view, manifest }, `${describe(view)}\nmanifest ${JSON.stringify(manifest)}\njob commit ${view.job_commit}`);
      return 0;
    }
    case 'watch':
      return watch(ctx, ledger);
    case 'cancel': {
      const hex = jobArg();
      const job = readJob(ledger.objects, ledger.refs, hex);
      if (!job) throw new GatosError('job_not_found', `no job blake3:${hex}`);
      const by = process.env.GATOS_ACTOR ?? `user:${process.env.USER ?? 'unknown'}`;
      const commit = await cancel(ledger, job, stringFlag(ctx, 'reason') ?? 'cancelled', by);
      ctx.out.result({ job_id: job.id, status: 'aborted', commit }, `aborted ${job.id} (${commit})`);
      return 0;
    }
    case 'verify': {
      const verification = verifyJob(ledger.objects, ledger.refs, jobArg());
      const lines = verification.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
      ctx.out.result(verification, [`${verification.ok ? 'verified' : 'NOT verified'} ${verification.job_id}`, ...lines].join('\n'));
      return verification.ok ? 0 : 1;
    }
    default:
      throw new GatosError('usage', USAGE);
  }
}

export const jobsCommand: Command = {
  name: 'jobs',
  usage: USAGE,
  options: {
    command: { type: 'string' },
    args: { type: 'string' },
    timeout: { type: 'string' },
    env: { type: 'string', multiple: true },
    cwd: { type: 'string' },
    input: { type: 'string', multiple: true },
    'policy-root': { type: 'string' },
    ns: { type: 'string' },
    manifest: { type: 'string' },
    file: { type: 'string' },
    'max-attempts': { type: 'string' },
    'retry-backoff-ms': { type: 'string' },
    'worker-id': { type: 'string' },
    concurrency: { type: 'string' },
    once: { type: 'boolean' },
    'max-jobs': { type: 'string' },
    'exit-when-idle': { type: 'boolean' },
    lease: { type: 'string' },
    workdir: { type: 'string' },
    'output-cap': { type: 'string' },
    status: { type: 'string' },
    since: { type: 'string' },
    reason: { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    await blake3Ready();
    const { repo, ledger } = openLedger(ctx.repo);
    try {
      return await run(ctx, repo, ledger);
    } finally {
      repo.close();
    }
  },
};
