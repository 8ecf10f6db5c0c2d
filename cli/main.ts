/**
 * The `gatos` dispatcher: global flags, command lookup, help, and the mapping from errors to
 * exit codes (0 ok, 1 failure found, 2 usage or input error). No command logic lives here.
 */
import { parseArgs } from 'node:util';
import { asGatosError, exitCodeFor, GatosError } from '../engine/errors.js';
import { packageVersion } from '../engine/version.js';
import type { Command, OptionSpec } from './command.js';
import { Output } from './output.js';

/**
 * The commands by name, each loaded from its module when it runs: a call pays only for the
 * engine code its command imports (importing every command took ~90 ms, one ~20-45 ms).
 * Listed in the order `gatos help` shows them.
 */
const COMMAND_MODULES: ReadonlyArray<readonly [names: readonly string[], load: () => Promise<readonly Command[]>]> = [
  [['init'], async () => [(await import('./commands/init.js')).initCommand]],
  [['key'], async () => [(await import('./commands/key.js')).keyCommand]],
  [['event'], async () => [(await import('./commands/event.js')).eventCommand]],
  [['policy'], async () => [(await import('./commands/policy.js')).policyCommand]],
  [['gov'], async () => [(await import('./commands/gov.js')).govCommand]],
  [['messages', 'bus'], async () => (await import('./commands/messages.js')).messagesCommands],
  [['jobs'], async () => [(await import('./commands/jobs.js')).jobsCommand]],
  [
    ['fold', 'state', 'pointer'],
    async () => {
      const state = await import('./commands/state.js');
      return [state.foldCommand, state.stateCommand, state.pointerCommand];
    },
  ],
  [['export'], async () => [(await import('./commands/export.js')).exportCommand]],
  [['daemon'], async () => [(await import('./commands/daemon.js')).daemonCommand]],
  [['scan'], async () => [(await import('./commands/scan.js')).scanCommand]],
  [['canon'], async () => [(await import('./commands/canon.js')).canonCommand]],
];

async function commandNamed(name: string): Promise<Command | undefined> {
  const entry = COMMAND_MODULES.find(([names]) => names.includes(name));
  return entry ? (await entry[1]()).find((c) => c.name === name) : undefined;
}

/** Every command, for the overview. */
async function allCommands(): Promise<Command[]> {
  return (await Promise.all(COMMAND_MODULES.map(([, load]) => load()))).flat();
}

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

async function overview(): Promise<string> {
  const commands = await allCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: gatos <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
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
  const command = await commandNamed(name);
  if (!command) throw new GatosError('usage', `unknown command "${name}"; run "gatos help" for the list`);
  return `${command.summary}\n\n${command.usage}`;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], out?: Output): Promise<number> {
  const wantsJson = argv.includes('--json');
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
    const command = await commandNamed(first);
    if (!command) throw new GatosError('usage', `unknown command "${first}"; run "gatos help" for the list`);
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
