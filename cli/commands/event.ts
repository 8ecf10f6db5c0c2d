import { blake3Ready } from '../../engine/codec/blake3.js';
import { parseJson } from '../../engine/codec/canonical-json.js';
import { GatosError } from '../../engine/errors.js';
import { assertOid } from '../../engine/git/oid.js';
import { appendBatches, appendEvents, type EventInput } from '../../engine/ledger/journal.js';
import { listEvents, readEvent } from '../../engine/ledger/journal-read.js';
import { ComputePool, parseThreads } from '../../engine/scheduler/pool.js';
import { type Command, type CommandContext, readInputText, requiredFlag, stringFlag } from '../command.js';
import { openLedger } from './ledger-context.js';

const USAGE = [
  'usage: gatos event add --ns <ns> --type <type> --payload <json> [--actor <kind:name>] [--ulid <ulid>] [--json]',
  '       gatos event add --file <events.jsonl> [--ns <ns>] [--actor <kind:name>] [--batch-size <n>] [--json]',
  '       gatos event ls --ns <ns> [--actor <kind:name>] [--json]',
  '       gatos event show <commit> [--json]',
  '',
  "  add (alias: emit)  sign an event with the actor's key and append it to refs/gatos/journal/<ns>/<kind>/<name>",
  '                     --actor defaults to $GATOS_ACTOR; a ULID already on the journal returns the existing commit',
  '  --file             one JSON object per line: {"ns","type","actor","payload","ulid"?}; --ns/--actor fill',
  '                     missing fields; one ref transaction per batch (default 10000 events)',
  "  ls                 list a namespace's events, newest first per journal",
  '  show               decode an event, recompute its Event-CID and check its signature',
].join('\n');

const str = stringFlag;
const required = (ctx: CommandContext, name: string, fallback?: string): string => requiredFlag(ctx, name, USAGE, fallback);

function readLines(path: string, defaults: Partial<EventInput>): EventInput[] {
  const text = readInputText(path);
  const events: EventInput[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: Record<string, unknown>;
    try {
      value = parseJson(line) as Record<string, unknown>;
    } catch (err) {
      throw new GatosError('invalid_json', `${path}:${i + 1}: ${(err as Error).message}`, { line: i + 1 });
    }
    events.push({ ...defaults, ...value } as EventInput);
  });
  return events;
}

async function add(ctx: CommandContext): Promise<number> {
  await blake3Ready();
  const { repo, ledger } = openLedger(ctx.repo);
  try {
    const actor = str(ctx, 'actor') ?? process.env.GATOS_ACTOR;
    const file = str(ctx, 'file');
    if (file !== undefined) {
      const defaults: Partial<EventInput> = {};
      if (actor) defaults.actor = actor;
      const ns = str(ctx, 'ns');
      if (ns) defaults.ns = ns;
      const batch = Number(str(ctx, 'batch-size') ?? 10_000);
      if (!Number.isInteger(batch) || batch < 1) throw new GatosError('invalid_argument', '--batch-size must be a positive integer');
      let appended = 0;
      let existing = 0;
      // Large batches are sealed (encoded, signed, hashed) on worker threads, which start while the file is read.
      const pool = new ComputePool({ threads: parseThreads(str(ctx, 'threads')) });
      try {
        const inputs = readLines(file, defaults);
        const batches = function* () {
          for (let start = 0; start < inputs.length; start += batch) yield inputs.slice(start, start + batch);
        };
        let done = 0;
        // The next batch is signed on the pool while this one is committed.
        for await (const results of appendBatches(ledger, batches(), { pool })) {
          for (const result of results) {
            if (result.existing) existing++;
            else appended++;
            if (ctx.out.json)
              process.stdout.write(
                `${JSON.stringify({ commit: result.commit, event_cid: result.event_cid, ulid: result.ulid, ref: result.ref })}\n`,
              );
          }
          done += results.length;
          ctx.out.progress('events', done, inputs.length, done === inputs.length);
        }
      } finally {
        await pool.close();
      }
      ctx.out.line(`appended ${appended} events${existing ? `, ${existing} already present` : ''}`);
      return 0;
    }
    let payload: unknown;
    try {
      payload = parseJson(required(ctx, 'payload'));
    } catch (err) {
      if (err instanceof GatosError && err.code === 'usage') throw err;
      throw new GatosError('invalid_json', `--payload: ${(err as Error).message}`);
    }
    const input: EventInput = { ns: required(ctx, 'ns'), type: required(ctx, 'type'), actor: required(ctx, 'actor', actor), payload };
    const ulid = str(ctx, 'ulid');
    if (ulid) input.ulid = ulid;
    const [result] = await appendEvents(ledger, [input]);
    if (!result) throw new GatosError('internal', 'no result');
    ctx.out.result(
      { commit: result.commit, event_cid: result.event_cid, ulid: result.ulid, ref: result.ref },
      `${result.existing ? 'already present' : 'appended'} ${result.ulid} as ${result.commit} on ${result.ref}\nEvent-CID: ${result.event_cid}`,
    );
    return 0;
  } finally {
    repo.close();
  }
}

function list(ctx: CommandContext): number {
  const { repo } = openLedger(ctx.repo);
  try {
    const events = listEvents(repo.objects, repo.refs, required(ctx, 'ns'), str(ctx, 'actor'));
    ctx.out.result({ events }, events.map((e) => `${e.commit.slice(0, 12)} ${e.ulid} ${e.actor} ${e.type}`).join('\n') || 'no events');
    return 0;
  } finally {
    repo.close();
  }
}

async function show(ctx: CommandContext): Promise<number> {
  await blake3Ready();
  if (ctx.positionals[1] === undefined) throw new GatosError('usage', `event show needs a commit id\n\n${USAGE}`);
  const commit = assertOid(ctx.positionals[1], 'commit');
  const { repo } = openLedger(ctx.repo);
  try {
    const event = readEvent(repo.objects, repo.refs, commit);
    const ok = event.cid_ok && event.signature_ok;
    ctx.out.result(
      event,
      `${JSON.stringify(event.envelope, null, 2)}\nEvent-CID: ${event.event_cid} (${event.cid_ok ? 'matches the trailer' : 'DOES NOT match the trailer'})\nsignature: ${event.signature_ok ? 'valid' : 'INVALID'}`,
    );
    return ok ? 0 : 1;
  } finally {
    repo.close();
  }
}

export const eventCommand: Command = {
  name: 'event',
  usage: USAGE,
  options: {
    ns: { type: 'string' },
    type: { type: 'string' },
    payload: { type: 'string' },
    actor: { type: 'string' },
    ulid: { type: 'string' },
    file: { type: 'string' },
    'batch-size': { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    const [sub] = ctx.positionals;
    if (sub === 'add' || sub === 'emit') return add(ctx);
    if (sub === 'ls') return list(ctx);
    if (sub === 'show') return show(ctx);
    throw new GatosError('usage', `unknown subcommand ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
  },
};
