import { blake3Ready } from '../../engine/codec/blake3.js';
import { parseJson } from '../../engine/codec/canonical-json.js';
import { GatosError } from '../../engine/errors.js';
import { openRepository } from '../../engine/git/repository.js';
import { clockFromEnv } from '../../engine/ledger/clock.js';
import { readCheckpoint, writeCheckpoint } from '../../engine/messages/checkpoint.js';
import { prune } from '../../engine/messages/prune.js';
import { type Bus, type DraftEnvelope, POOL_MIN_MESSAGES, publish } from '../../engine/messages/publish.js';
import { readMessages } from '../../engine/messages/read.js';
import { subscribe } from '../../engine/messages/subscribe.js';
import { listTopics } from '../../engine/messages/topics.js';
import { ComputePool, parseThreads } from '../../engine/scheduler/pool.js';
import { type Command, type CommandContext, intFlag, readInput, readInputText, requiredFlag, stringFlag } from '../command.js';

const USAGE = [
  'usage: gatos messages publish --topic T --type X --payload JSON [--ns NS] [--ulid U] [--attach name=path ...] [--json]',
  '       gatos messages publish --topic T --file F.jsonl [--threads N] [--json]',
  '       gatos messages read --topic T [--since ULID] [--limit N] [--checkpoint-group G] [--json]',
  '       gatos messages checkpoint --topic T --group G --ulid U [--commit OID] | --topic T --group G (show)',
  '       gatos messages prune --topic T [--retention-days 30] [--dry-run] [--json]',
  '       gatos messages tail --topic T [--since ULID] [--json]   (follows until Ctrl-C)',
  '       gatos messages topics [--json]',
  '',
  '  alias: gatos bus ...   Limits: --max-messages N, --max-bytes N (segment rotation, publish).',
].join('\n');

const need = (ctx: CommandContext, name: string): string => requiredFlag(ctx, name, USAGE);

function drafts(ctx: CommandContext): DraftEnvelope[] {
  const file = stringFlag(ctx, 'file');
  if (file !== undefined) {
    return readInputText(file)
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line, i) => {
        try {
          return parseJson(line) as DraftEnvelope;
        } catch (err) {
          throw new GatosError('invalid_json', `${file}:${i + 1}: ${(err as Error).message}`);
        }
      });
  }
  let payload: unknown;
  try {
    payload = parseJson(need(ctx, 'payload'));
  } catch (err) {
    if (err instanceof GatosError && err.code === 'usage') throw err;
    throw new GatosError('invalid_json', `--payload: ${(err as Error).message}`);
  }
  const draft: DraftEnvelope = { ns: stringFlag(ctx, 'ns') ?? '', type: need(ctx, 'type'), payload: payload as Record<string, unknown> };
  const ulid = stringFlag(ctx, 'ulid');
  if (ulid) draft.ulid = ulid;
  const attach = (ctx.values.attach as string[] | undefined) ?? [];
  if (attach.length > 0) {
    draft.attachments = {};
    for (const spec of attach) {
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new GatosError('usage', `--attach takes name=path, got ${JSON.stringify(spec)}`);
      draft.attachments[spec.slice(0, eq)] = readInput(spec.slice(eq + 1), 'attachment');
    }
  }
  return [draft];
}

async function run(ctx: CommandContext, bus: Bus): Promise<number> {
  const [sub] = ctx.positionals;
  switch (sub) {
    case 'publish': {
      const options: Parameters<typeof publish>[3] = {};
      const maxMessages = intFlag(ctx, 'max-messages');
      const maxBytes = intFlag(ctx, 'max-bytes');
      if (maxMessages !== undefined) options.maxMessages = maxMessages;
      if (maxBytes !== undefined) options.maxBytes = maxBytes;
      const batch = drafts(ctx);
      // Large files are compressed on worker threads while the chain is built here.
      const pool = batch.length >= POOL_MIN_MESSAGES ? new ComputePool({ threads: parseThreads(stringFlag(ctx, 'threads')) }) : undefined;
      if (pool) options.pool = pool;
      let receipts: Awaited<ReturnType<typeof publish>>;
      try {
        receipts = await publish(bus, need(ctx, 'topic'), batch, options);
      } finally {
        await pool?.close();
      }
      if (receipts.length === 1) {
        const [r] = receipts as [(typeof receipts)[number]];
        ctx.out.result({ ulid: r.ulid, commit: r.commit, content_id: r.content_id }, `published ${r.ulid} as ${r.commit}\n${r.content_id}`);
      } else {
        ctx.out.result(
          { published: receipts.length, receipts: receipts.map((r) => ({ ulid: r.ulid, commit: r.commit, content_id: r.content_id })) },
          `published ${receipts.length} messages`,
        );
      }
      return 0;
    }
    case 'read': {
      const topic = need(ctx, 'topic');
      const options: { since?: string; limit?: number } = {};
      const since = stringFlag(ctx, 'since');
      const limit = intFlag(ctx, 'limit');
      if (since) options.since = since;
      if (limit !== undefined) options.limit = limit;
      const page = readMessages(bus, topic, options);
      const group = stringFlag(ctx, 'checkpoint-group');
      const last = page.messages[page.messages.length - 1];
      if (group && last) {
        writeCheckpoint(bus, group, topic, { ulid: last.ulid, commit: last.commit });
        page.checkpoint_hint = { group, topic };
      }
      const lines = page.messages.map(
        (m) => `${m.ulid} ${m.commit.slice(0, 12)} ${Buffer.from(m.canonical_json, 'base64').toString('utf8')}`,
      );
      ctx.out.result(page, lines.join('\n') || 'no messages');
      return 0;
    }
    case 'checkpoint': {
      const topic = need(ctx, 'topic');
      const group = need(ctx, 'group');
      const ulid = stringFlag(ctx, 'ulid');
      if (!ulid) {
        const current = readCheckpoint(bus, group, topic) ?? null;
        ctx.out.result(
          { group, topic, checkpoint: current },
          current ? `${group}/${topic} at ${current.ulid}` : `${group}/${topic} has no checkpoint`,
        );
        return 0;
      }
      const commit = stringFlag(ctx, 'commit');
      const moved = writeCheckpoint(bus, group, topic, commit ? { ulid, commit } : { ulid });
      ctx.out.result({ ...moved, ulid }, `${moved.ref} ${moved.moved ? '->' : 'already at'} ${ulid}`);
      return 0;
    }
    case 'prune': {
      const days = intFlag(ctx, 'retention-days') ?? 30;
      if (days < 0) throw new GatosError('invalid_argument', '--retention-days must be >= 0');
      const result = prune(bus, need(ctx, 'topic'), { retentionMs: days * 24 * 3600 * 1000, dryRun: ctx.values['dry-run'] === true });
      const lines = [
        `${ctx.values['dry-run'] ? 'would prune' : 'pruned'} ${result.pruned.length} segment(s) of ${result.topic} (retention ${days} days, gating checkpoint ${result.gating_checkpoint_ulid ?? 'none'})`,
        ...result.pruned.map((p) => `- ${p.ref} ${p.first_ulid}..${p.last_ulid} ${p.message_count} messages, ${p.approximate_bytes} bytes`),
        ...result.skipped.map((s) => `  kept ${s.ref} (${s.reason})`),
      ];
      if (result.summary_ref && !ctx.values['dry-run']) lines.push(`summary: ${result.summary_ref}`);
      ctx.out.result(result, lines.join('\n'));
      return 0;
    }
    case 'tail': {
      const topic = need(ctx, 'topic');
      await new Promise<void>((resolve, reject) => {
        const subscription = subscribe(
          bus,
          topic,
          stringFlag(ctx, 'since'),
          (message) => {
            const text = Buffer.from(message.canonical_json, 'base64').toString('utf8');
            process.stdout.write(ctx.out.json ? `${JSON.stringify(message)}\n` : `${message.ulid} ${text}\n`);
          },
          (err) => {
            subscription.stop();
            reject(err);
          },
        );
        const stop = () => {
          subscription.stop();
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return 0;
    }
    case 'topics': {
      const topics = listTopics(bus.refs);
      ctx.out.result({ topics }, topics.join('\n') || 'no topics');
      return 0;
    }
    default:
      throw new GatosError('usage', USAGE);
  }
}

function messagesCommand(name: string): Command {
  return {
    name,
    usage: USAGE,
    options: {
      topic: { type: 'string' },
      type: { type: 'string' },
      payload: { type: 'string' },
      ns: { type: 'string' },
      ulid: { type: 'string' },
      file: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      'checkpoint-group': { type: 'string' },
      group: { type: 'string' },
      commit: { type: 'string' },
      'retention-days': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'max-messages': { type: 'string' },
      'max-bytes': { type: 'string' },
      threads: { type: 'string' },
      attach: { type: 'string', multiple: true },
    },
    allowPositionals: true,
    async run(ctx) {
      await blake3Ready();
      const repo = openRepository(ctx.repo);
      try {
        return await run(ctx, { objects: repo.objects, refs: repo.refs, clock: clockFromEnv() });
      } finally {
        repo.close();
      }
    },
  };
}

export const messagesCommands: Command[] = [messagesCommand('messages'), messagesCommand('bus')];
