/**
 * The fold itself: a pure function from (state, ordered events, spec) to state. No clock, no
 * I/O, no randomness; numbers are integers or fixed-point decimals held as BigInt, so the same
 * inputs give the same state on every machine. Events are ordered by (ULID, actor, commit id)
 * across all journals of the namespace (decision 0008). An op whose source field is missing, or
 * whose node holds a value of the wrong kind, is skipped and counted, never guessed.
 */
import type { Oid } from '../git/ports.js';
import { derivedOrder, type FoldOp, type FoldSpec } from './fold-spec.js';

export interface FoldEvent {
  commit: Oid;
  ref: string;
  ns: string;
  actor: string;
  ulid: string;
  type: string;
  ts: string;
  payload: Record<string, unknown>;
}

/** Node path -> JSON value. */
export type StateMap = Map<string, unknown>;

export interface FoldStats {
  events: number;
  ops: number;
  skipped: number;
}

/** The total order of a fold: ULID, then actor, then commit id. */
export function compareEvents(a: FoldEvent, b: FoldEvent): number {
  if (a.ulid !== b.ulid) return a.ulid < b.ulid ? -1 : 1;
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1;
  return a.commit < b.commit ? -1 : a.commit > b.commit ? 1 : 0;
}

/** `<ulid> <actor> <commit>`: where a fold stopped (the `Fold-Last` trailer). */
export function eventKey(event: FoldEvent): string {
  return `${event.ulid} ${event.actor} ${event.commit}`;
}

export function compareKeys(a: string, b: string): number {
  const [ua, aa, ca] = a.split(' ') as [string, string, string];
  const [ub, ab, cb] = b.split(' ') as [string, string, string];
  return compareEvents({ ulid: ua, actor: aa, commit: ca } as FoldEvent, { ulid: ub, actor: ab, commit: cb } as FoldEvent);
}

const COMPONENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const matchers = new WeakMap<FoldSpec, Array<(type: string) => boolean>>();

function globMatcher(pattern: string): (type: string) => boolean {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return (type) => re.test(type);
}

function ruleMatchers(spec: FoldSpec): Array<(type: string) => boolean> {
  let found = matchers.get(spec);
  if (!found) {
    found = spec.rules.map((rule) => {
      const patterns = (Array.isArray(rule.on) ? rule.on : [rule.on]).map(globMatcher);
      return (type: string) => patterns.some((match) => match(type));
    });
    matchers.set(spec, found);
  }
  return found;
}

function source(event: FoldEvent, name: string): unknown {
  if (name === 'actor' || name === 'ulid' || name === 'type' || name === 'ts' || name === 'ns') return event[name];
  let value: unknown = event.payload;
  for (const key of name.split('.').slice(1)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function nodePath(template: string, event: FoldEvent): string | undefined {
  const parts: string[] = [];
  for (const component of template.split('/')) {
    const name = /^\{(.+)\}$/.exec(component)?.[1];
    if (name === undefined) {
      parts.push(component);
      continue;
    }
    const value = source(event, name);
    // An actor takes two components, `kind/name`, as in journal refs (decision 0002).
    const text =
      name === 'actor'
        ? event.actor.replace(':', '/')
        : typeof value === 'string'
          ? value
          : Number.isSafeInteger(value)
            ? String(value)
            : undefined;
    if (text === undefined || !text.split('/').every((part) => COMPONENT.test(part))) return undefined;
    parts.push(text);
  }
  return parts.join('/');
}

/** An integer or decimal string as an integer scaled by 10^scale; undefined when not exact. */
export function toScaled(value: unknown, scale: number): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) * 10n ** BigInt(scale) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
  if (!match) return undefined;
  const fraction = match[3] ?? '';
  if (fraction.length > scale) return undefined;
  const digits = BigInt(`${match[2]}${fraction.padEnd(scale, '0')}`);
  return match[1] === '-' ? -digits : digits;
}

/** Scale 0: a JSON integer (a string beyond 2^53); otherwise a decimal string with `scale` digits. */
export function fromScaled(n: bigint, scale: number): number | string {
  if (scale === 0) return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Applies one op; false when it had to be skipped. */
function applyOp(state: StateMap, op: FoldOp, event: FoldEvent, scale: number, derived: ReadonlySet<string>): boolean {
  const path = nodePath(op.path, event);
  if (path === undefined || derived.has(path)) return false;
  if (op.op === 'delete') {
    state.delete(path);
    return true;
  }
  const value = op.from !== undefined ? source(event, op.from) : op.value;
  const current = state.get(path);
  switch (op.op) {
    case 'set':
      if (value === undefined) return false;
      state.set(path, structuredClone(value));
      return true;
    case 'merge':
      if (!isObject(value) || (current !== undefined && !isObject(current))) return false;
      state.set(path, Object.assign(current ?? {}, structuredClone(value)));
      return true;
    case 'append':
      if (value === undefined || (current !== undefined && !Array.isArray(current))) return false;
      if (current) (current as unknown[]).push(structuredClone(value));
      else state.set(path, [structuredClone(value)]);
      return true;
    case 'increment': {
      const by = toScaled(op.from !== undefined ? value : (op.by ?? 1), scale);
      const base = current === undefined ? 0n : toScaled(current, scale);
      if (by === undefined || base === undefined) return false;
      state.set(path, fromScaled(base + by, scale));
      return true;
    }
  }
}

/** Folds `events` (already in fold order) into `state`, in place. */
export function applyEvents(state: StateMap, events: Iterable<FoldEvent>, spec: FoldSpec, stats: FoldStats): void {
  const scale = spec.math?.scale ?? 0;
  const matches = ruleMatchers(spec);
  const derived = new Set((spec.derived ?? []).map((d) => d.path));
  for (const event of events) {
    stats.events++;
    spec.rules.forEach((rule, i) => {
      if (!(matches[i] as (type: string) => boolean)(event.type)) return;
      for (const op of rule.ops) {
        stats.ops++;
        if (!applyOp(state, op, event, scale, derived)) stats.skipped++;
      }
    });
  }
}

/** Computes the derived nodes (sums) from the rest of the state, dependencies first. */
export function applyDerived(state: StateMap, spec: FoldSpec, stats: FoldStats): void {
  const scale = spec.math?.scale ?? 0;
  for (const node of derivedOrder(spec.derived ?? [])) {
    let total = 0n;
    for (const input of node.sum) {
      const value = state.get(input);
      if (value === undefined) continue;
      const scaled = toScaled(value, scale);
      if (scaled === undefined) stats.skipped++;
      else total += scaled;
    }
    state.set(node.path, fromScaled(total, scale));
  }
}
