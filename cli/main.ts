/**
 * The `gatos` dispatcher: global flags, command lookup, help, and the mapping from errors to
 * exit codes (0 ok, 1 failure found, 2 usage or input error). No command logic lives here.
 */
import { parseArgs } from 'node:util';
import { asGatosError, exitCodeFor, GatosError } from '../engine/errors.js';
import { packageVersion } from '../engine/version.js';
import type { Command, OptionSpec } from './command.js';
import { Output } from './output.js';

/** A command as `gatos help` lists it, its code loaded from its module only when it runs. */
interface CommandEntry {
  name: string;
  /** One line for `gatos help`: kept here, so that the overview loads no command's code. */
  summary: string;
  load: () => Promise<Command>;
}

/** The command `name` of a module that holds several (imports are cached: loaded once). */
const named = (load: () => Promise<readonly Command[]>) => (name: string) => async () =>
  (await load()).find((c) => c.name === name) as Command;
const messages = named(async () => (await import('./commands/messages.js')).messagesCommands);
const state = named(async () => {
  const module = await import('./commands/state.js');
  return [module.foldCommand, module.stateCommand, module.pointerCommand];
});

/**
 * The commands, in the order `gatos help` shows them. A call pays only for the engine code its
 * command imports (importing every command took ~90 ms, one ~20-45 ms).
 */
const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'init',
    summary: 'Create a repository for GATOS (or confirm an existing one)',
    load: async () => (await import('./commands/init.js')).initCommand,
  },
  { name: 'key', summary: 'Create actor keys and list the trust graph', load: async () => (await import('./commands/key.js')).keyCommand },
  {
    name: 'event',
    summary: 'Append signed events to journals, list and show them',
    load: async () => (await import('./commands/event.js')).eventCommand,
  },
  {
    name: 'policy',
    summary: 'Publish, activate and show policy bundles (the gate for event appends)',
    load: async () => (await import('./commands/policy.js')).policyCommand,
  },
  {
    name: 'gov',
    summary: 'Governance: propose, approve (N of a group), grant, revoke, status',
    load: async () => (await import('./commands/gov.js')).govCommand,
  },
  { name: 'messages', summary: 'Message plane: publish, read, checkpoint, prune, topics', load: messages('messages') },
  { name: 'bus', summary: 'Alias of gatos messages', load: messages('bus') },
  {
    name: 'jobs',
    summary: 'Job plane: enqueue, work, ls, show, watch, cancel, verify',
    load: async () => (await import('./commands/jobs.js')).jobsCommand,
  },
  { name: 'fold', summary: 'State plane: fold journals into a checkpoint with a Proof-of-Fold; verify one', load: state('fold') },
  { name: 'state', summary: 'Show state nodes (with Merkle proofs) and bisect state across the ledger', load: state('state') },
  { name: 'pointer', summary: 'Opaque pointers: store private bytes outside Git, resolve them by digest', load: state('pointer') },
  {
    name: 'export',
    summary: 'Export the ledger, messages, state, jobs and governance to SQLite or Parquet; verify an export',
    load: async () => (await import('./commands/export.js')).exportCommand,
  },
  {
    name: 'daemon',
    summary: 'Serve the JSONL RPC (messages.*, jobs.*, metrics) over stdio or a unix socket',
    load: async () => (await import('./commands/daemon.js')).daemonCommand,
  },
  {
    name: 'scan',
    summary: 'Walk every ref under a prefix through the worker pool and count refs and commits',
    load: async () => (await import('./commands/scan.js')).scanCommand,
  },
  {
    name: 'canon',
    summary: 'Print the RFC 8785 canonical form of a JSON document, or its blake3 content id',
    load: async () => (await import('./commands/canon.js')).canonCommand,
  },
];

const entryNamed = (name: string) => COMMANDS.find((entry) => entry.name === name);

const GLOBAL_OPTIONS: OptionSpec = {
  repo: { type: 'string' },
  json: { type: 'boolean' },
  threads: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export function version(): string {
  return packageVersion();
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: gatos <command> [flags]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  Show help for a command`,
    '',
    'Global flags:',
    '  --repo <path>   repository to use (default: the one containing the current directory)',
    '  --json          machine-readable output',
    '  --threads <n>   worker threads (default: number of CPUs)',
    '  --debug         print stack traces on errors',
    '  --version       print the version',
    '',
    'Exit status: 0 ok, 1 a failure was found, 2 usage or input error.',
  ].join('\n');
}

async function helpFor(name: string | undefined): Promise<string> {
  if (!name) return overview();
  const entry = entryNamed(name);
  if (!entry) throw new GatosError('usage', `unknown command "${name}"; run "gatos help" for the list`);
  return `${entry.summary}\n\n${(await entry.load()).usage}`;
}

/**
 * A reader of stdout that goes away (`gatos event ls | head`) ends the command as SIGPIPE ends
 * git's: at once, quietly, status 141 (128 + SIGPIPE), instead of an unhandled EPIPE's stack trace.
 */
function endWhenStdoutCloses(): void {
  if (process.stdout.listenerCount('error') > 0) return;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(141);
  });
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], out?: Output): Promise<number> {
  const wantsJson = argv.includes('--json');
  if (!out) endWhenStdoutCloses();
  const output = out ?? new Output(wantsJson);
  // Stack traces then name the TypeScript sources, also when the code runs from the bundle.
  if (argv.includes('--debug')) process.setSourceMapsEnabled(true);
  try {
    const [first, ...rest] = hoistGlobalFlags(argv);
    if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
      const help = await helpFor(first === 'help' ? rest[0] : undefined);
      output.result({ help }, help);
      return first === undefined ? 2 : 0;
    }
    if (first === '--version' || first === '-V') {
      output.result({ version: version() }, `gatos ${version()}`);
      return 0;
    }
    const entry = entryNamed(first);
    if (!entry) throw new GatosError('usage', `unknown command "${first}"; run "gatos help" for the list`);
    const command = await entry.load();
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...GLOBAL_OPTIONS, ...command.options },
        allowPositionals: command.allowPositionals ?? false,
        strict: true,
      });
    } catch (err) {
      throw new GatosError('usage', `${(err as Error).message}\n\n${command.usage}`);
    }
    if (parsed.values.help) {
      const help = await helpFor(command.name);
      output.result({ help }, help);
      return 0;
    }
    const repo = typeof parsed.values.repo === 'string' ? parsed.values.repo : process.cwd();
    return await command.run({ values: parsed.values, positionals: parsed.positionals, repo, out: output });
  } catch (err) {
    return reportError(err, output, argv.includes('--debug'));
  }
}

/** Lets global flags come before the command (`gatos --repo X scan ...`) by moving them after it. */
function hoistGlobalFlags(argv: string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const flag = (argv[i] as string).replace(/^--/, '').split('=')[0] as string;
    const spec = (argv[i] as string).startsWith('--') ? GLOBAL_OPTIONS[flag] : undefined;
    if (!spec || flag === 'help') break;
    const takesValue = spec.type === 'string' && !(argv[i] as string).includes('=');
    leading.push(...argv.slice(i, i + (takesValue ? 2 : 1)));
    i += takesValue ? 2 : 1;
  }
  if (leading.length === 0 || i >= argv.length) return argv;
  return [argv[i] as string, ...leading, ...argv.slice(i + 1)];
}

function reportError(err: unknown, output: Output, debug: boolean): number {
  const error = asGatosError(err);
  if (output.json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
  else process.stderr.write(`gatos: ${error.message} [${error.code}]\n`);
  if (debug) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return exitCodeFor(error);
}
