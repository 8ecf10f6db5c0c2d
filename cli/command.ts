/**
 * The shape of a CLI command: its flags, its help text and a handler. Handlers parse nothing
 * themselves beyond their flags, call the engine, and format output through `Output`.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { GatosError } from '../engine/errors.js';
import type { Output } from './output.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** Values of the command's flags and the global ones (`repo`, `json`, `threads`, `debug`). */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  /** `--repo`, or the current directory. */
  repo: string;
  out: Output;
}

export interface Command {
  name: string;
  /** Usage lines and flag descriptions for `gatos help <name>` (its one-line summary is cli/main.ts's). */
  usage: string;
  options: OptionSpec;
  allowPositionals?: boolean;
  /** Returns the exit status: 0 ok, 1 a failure was found. */
  run(ctx: CommandContext): Promise<number> | number;
}

/** A string flag's value, or undefined when absent. */
export function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A string flag that must be there (or have a fallback, e.g. from the environment). */
export function requiredFlag(ctx: CommandContext, name: string, usage: string, fallback?: string): string {
  const value = stringFlag(ctx, name) ?? fallback;
  if (value === undefined) throw new GatosError('usage', `--${name} is required\n\n${usage}`);
  return value;
}

/**
 * An integer flag, or undefined when absent; `invalid_argument` when not an integer or below `min`
 * (what it must be at least, e.g. 1 for a count).
 */
export function intFlag(ctx: CommandContext, name: string, min?: number): number | undefined {
  const value = stringFlag(ctx, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  // Decimal digits only: Number() would also take "0x10", "1e3" and " 5".
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new GatosError('invalid_argument', `--${name} must be an integer, got ${JSON.stringify(value)}`);
  if (min !== undefined && n < min) throw new GatosError('invalid_argument', `--${name} must be at least ${min}, got ${n}`);
  return n;
}

/**
 * The bytes of a file a flag or argument names (`-`: standard input); one that cannot be read is
 * `invalid_argument`, naming it (and `what` it is, e.g. "attachment").
 */
export function readInput(path: string, what?: string): Buffer {
  try {
    return readFileSync(path === '-' ? 0 : path);
  } catch (err) {
    const name = path === '-' ? 'standard input' : path;
    throw new GatosError('invalid_argument', `cannot read ${what ? `${what} ` : ''}${name}: ${(err as Error).message}`, { path });
  }
}

/** `readInput` as UTF-8 text. */
export function readInputText(path: string): string {
  return readInput(path).toString('utf8');
}
