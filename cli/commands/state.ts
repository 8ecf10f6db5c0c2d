import { spawn } from 'node:child_process';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { canonicalize } from '../../engine/codec/canonical-json.js';
import { GatosError } from '../../engine/errors.js';
import type { Repository } from '../../engine/git/repository.js';
import type { Ledger } from '../../engine/ledger/context.js';
import { ComputePool, parseThreads } from '../../engine/scheduler/pool.js';
import { bisectState } from '../../engine/state/bisect.js';
import { resolveCheckpoint, stateRef } from '../../engine/state/checkpoint.js';
import { fold, saveSpec } from '../../engine/state/fold.js';
import { parseFoldSpec } from '../../engine/state/fold-spec.js';
import { privateStore, putPrivate, resolvePrivate } from '../../engine/state/pointers.js';
import { nodeProof, readStateTree } from '../../engine/state/state-tree.js';
import { verifyCheckpoint } from '../../engine/state/verify.js';
import { writeFileWhole } from '../../engine/whole-writes.js';
import { type Command, type CommandContext, readInput, readInputText, requiredFlag, stringFlag } from '../command.js';
import { openLedger } from './ledger-context.js';

const FOLD_USAGE = [
  'usage: gatos fold --ns NS [--spec FILE [--save-spec]] [--full] [--threads N (default: CPUs)] [--json]',
  '       gatos fold verify NS|REF|COMMIT [--json]     exit 1 names the check that failed',
  '',
  '  Without --spec the spec committed for NS (refs/gatos/folds/NS) applies, else the default:',
  '  each event payload merged into the node named by its type. --full ignores the previous checkpoint.',
].join('\n');

const STATE_USAGE = [
  'usage: gatos state show NS [PATH] [--at COMMIT] [--proof] [--json]',
  "       gatos state bisect NS --good COMMIT --bad COMMIT --run 'CMD'",
  '',
  '  bisect runs CMD (sh -c) with the state as JSON on stdin; exit 0 = good. It names the first',
  '  ledger event after which CMD fails.',
].join('\n');

const POINTER_USAGE = [
  'usage: gatos pointer put FILE --location URI --capability URI [--json]',
  '       gatos pointer resolve DIGEST [--location URI] [--out FILE]',
  '',
  '  file:/// locations store the bytes in that directory; others in the private store',
  '  (GATOS_PRIVATE_STORE, default .git/gatos/private). Plaintext never enters Git.',
].join('\n');

async function withLedger(ctx: CommandContext, body: (repo: Repository, ledger: Ledger) => Promise<number>): Promise<number> {
  await blake3Ready();
  const { repo, ledger } = openLedger(ctx.repo);
  try {
    return await body(repo, ledger);
  } finally {
    repo.close();
  }
}

/** A checkpoint named by namespace, ref or commit id. */
function checkpointTarget(ledger: Ledger, text: string): string {
  if (/^[0-9a-f]{40}$/.test(text) || text.startsWith('refs/')) return text;
  return ledger.refs.resolve(stateRef(text)) ?? text;
}

export const foldCommand: Command = {
  name: 'fold',
  usage: FOLD_USAGE,
  options: { ns: { type: 'string' }, spec: { type: 'string' }, 'save-spec': { type: 'boolean' }, full: { type: 'boolean' } },
  allowPositionals: true,
  run: (ctx) =>
    withLedger(ctx, async (repo, ledger) => {
      const [sub, target] = ctx.positionals;
      if (sub === 'verify') {
        if (!target) throw new GatosError('usage', FOLD_USAGE);
        const oid = resolveCheckpoint(ledger.objects, ledger.refs, '', checkpointTarget(ledger, target)).commit;
        const result = await verifyCheckpoint(ledger, oid, repo.gitDir);
        const lines = result.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
        ctx.out.result(result, [`${result.ok ? 'verified' : 'NOT verified'} ${oid}`, ...lines].join('\n'));
        return result.ok ? 0 : 1;
      }
      if (sub !== undefined) throw new GatosError('usage', FOLD_USAGE);
      const ns = requiredFlag(ctx, 'ns', FOLD_USAGE);
      const specFile = stringFlag(ctx, 'spec');
      const spec = specFile ? parseFoldSpec(readInputText(specFile)) : undefined;
      if (ctx.values['save-spec'] && !spec) throw new GatosError('usage', `--save-spec needs --spec\n\n${FOLD_USAGE}`);
      if (spec && ctx.values['save-spec']) saveSpec(ledger, ns, spec);
      const threads = stringFlag(ctx, 'threads');
      // Journals are read on the pool: a 100k-event fold takes about two thirds of the time it takes in one thread.
      const pool = new ComputePool(threads ? { threads: parseThreads(threads) } : {});
      try {
        const result = await fold(ledger, ns, {
          gitDir: repo.gitDir,
          store: privateStore(repo.gitDir),
          full: ctx.values.full === true,
          ...(spec ? { spec } : {}),
          pool,
        });
        const how = result.unchanged ? 'unchanged' : result.incremental ? `incremental, ${result.new_events} new` : 'full';
        ctx.out.result(result, `${stateRef(ns)} -> ${result.commit} (${result.events} events, ${how})\nState-Root ${result.state_root}`);
        return 0;
      } finally {
        await pool.close();
      }
    }),
};

function runPredicate(command: string, input: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code === 0));
    child.stdin.on('error', () => {}); // a predicate may exit without reading
    child.stdin.end(input);
  });
}

export const stateCommand: Command = {
  name: 'state',
  usage: STATE_USAGE,
  options: {
    at: { type: 'string' },
    proof: { type: 'boolean' },
    good: { type: 'string' },
    bad: { type: 'string' },
    run: { type: 'string' },
  },
  allowPositionals: true,
  run: (ctx) =>
    withLedger(ctx, async (repo, ledger) => {
      const [sub, ns, path] = ctx.positionals;
      if (!ns) throw new GatosError('usage', STATE_USAGE);
      if (sub === 'show') {
        const at = stringFlag(ctx, 'at');
        const checkpoint = resolveCheckpoint(ledger.objects, ledger.refs, ns, at);
        const nodes = checkpoint.stateTree ? readStateTree(ledger.objects, checkpoint.stateTree, checkpoint.spec) : [];
        if (path === undefined) {
          const value = {
            commit: checkpoint.commit,
            state_root: checkpoint.stateRoot,
            nodes: Object.fromEntries(nodes.map((n) => [n.path, n.stored])),
          };
          ctx.out.result(
            value,
            [`${checkpoint.commit} State-Root ${checkpoint.stateRoot}`, ...nodes.map((n) => `${n.path} ${canonicalize(n.stored)}`)].join(
              '\n',
            ),
          );
          return 0;
        }
        const node = nodes.find((n) => n.path === path);
        if (!node) throw new GatosError('node_not_found', `no node ${path} in ${ns} at ${checkpoint.commit}`, { path });
        const value: Record<string, unknown> = { path, value: node.stored, private: node.private, state_root: checkpoint.stateRoot };
        if (ctx.values.proof) value.proof = nodeProof(nodes, path);
        ctx.out.result(value, ctx.values.proof ? JSON.stringify(value, null, 2) : canonicalize(node.stored));
        return 0;
      }
      if (sub === 'bisect') {
        const need = (name: string) => checkpointTarget(ledger, requiredFlag(ctx, name, STATE_USAGE));
        const good = resolveCheckpoint(ledger.objects, ledger.refs, ns, need('good')).commit;
        const bad = resolveCheckpoint(ledger.objects, ledger.refs, ns, need('bad')).commit;
        const command = requiredFlag(ctx, 'run', STATE_USAGE);
        const result = await bisectState(ledger, repo.gitDir, ns, good, bad, (json) => runPredicate(command, json));
        const f = result.first_bad;
        ctx.out.result(
          result,
          `first bad event: ${f.commit} ${f.type} ${f.ulid} by ${f.actor}\n(${result.candidates} candidates, ${result.steps} runs)`,
        );
        return 0;
      }
      throw new GatosError('usage', STATE_USAGE);
    }),
};

export const pointerCommand: Command = {
  name: 'pointer',
  usage: POINTER_USAGE,
  options: { location: { type: 'string' }, capability: { type: 'string' }, out: { type: 'string' } },
  allowPositionals: true,
  run: (ctx) =>
    withLedger(ctx, async (repo) => {
      const [sub, arg] = ctx.positionals;
      if (sub === 'put' && arg) {
        const bytes = readInput(arg);
        const pointer = putPrivate(
          bytes,
          requiredFlag(ctx, 'location', POINTER_USAGE),
          requiredFlag(ctx, 'capability', POINTER_USAGE),
          privateStore(repo.gitDir),
        );
        ctx.out.result(pointer, canonicalize(pointer));
        return 0;
      }
      if (sub === 'resolve' && arg) {
        const bytes = resolvePrivate(arg, privateStore(repo.gitDir), stringFlag(ctx, 'location'));
        const out = stringFlag(ctx, 'out');
        // Private plaintext: readable by its owner only, and never left cut short.
        if (out) writeFileWhole(out, bytes, { mode: 0o600 });
        else process.stdout.write(bytes);
        return 0;
      }
      throw new GatosError('usage', POINTER_USAGE);
    }),
};
