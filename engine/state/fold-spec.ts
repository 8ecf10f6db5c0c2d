/**
 * Fold specs (decision 0008): a declarative, versioned map from event types to operations on
 * state nodes. The state is a flat map from node paths (`services/api`) to JSON values.
 *
 *   version: 1
 *   math: { scale: 2 }                     # fixed-point decimals with 2 digits; 0 = integers
 *   rules:
 *     - on: deploy.*                       # event type; `*` matches any run of characters
 *       ops:
 *         - { op: set, path: "services/{payload.service}/status", value: started }
 *         - { op: increment, path: stats/deploys }              # by 1
 *         - { op: increment, path: "billing/{actor}", from: payload.amount }
 *         - { op: merge, path: "services/{payload.service}", from: payload }
 *         - { op: append, path: log/deploys, from: ulid }
 *         - { op: delete, path: "services/{payload.service}/error" }
 *   derived:
 *     - { path: stats/total, sum: [stats/deploys, stats/rollbacks] }
 *   private:
 *     - { path: "users/*", capability: "gatos-key://v1/aes-256-gcm/team" }
 *
 * `from` names an event field: `payload[.key...]`, `actor`, `ulid`, `type`, `ts`, `ns`; `{…}` in a
 * path substitutes one. Floats are refused anywhere; `Fold-Root` is the sha256 of the canonical
 * JSON of the validated spec.
 */
import { createHash } from 'node:crypto';
import { canonicalBytes } from '../codec/canonical-json.js';
import { parseYaml } from '../codec/yaml.js';
import { GatosError } from '../errors.js';

export type OpName = 'set' | 'merge' | 'increment' | 'append' | 'delete';

export interface FoldOp {
  op: OpName;
  path: string;
  value?: unknown;
  from?: string;
  by?: number | string;
}

export interface FoldRule {
  on: string | string[];
  ops: FoldOp[];
}

export interface DerivedNode {
  path: string;
  sum: string[];
}

export interface PrivateRule {
  path: string;
  capability: string;
  location?: string;
}

export interface FoldSpec {
  version: 1;
  math?: { scale: number };
  rules: FoldRule[];
  derived?: DerivedNode[];
  private?: PrivateRule[];
}

/** Each event's payload merged into the node named by its type, last write wins. */
export const DEFAULT_SPEC: FoldSpec = { version: 1, rules: [{ on: '*', ops: [{ op: 'merge', path: '{type}', from: 'payload' }] }] };

const OPS = new Set<OpName>(['set', 'merge', 'increment', 'append', 'delete']);
const COMPONENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const SOURCE = /^(payload(\.[A-Za-z0-9_-]+)*|actor|ulid|type|ts|ns)$/;
const URI = /^[a-z][a-z0-9+.-]*:\/\/\S+$/;

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_fold_spec', message, data);
}

function closed(value: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`${where} must be an object`);
  for (const key of Object.keys(value)) if (!keys.includes(key)) throw invalid(`${where} has unknown field ${JSON.stringify(key)}`);
  return value as Record<string, unknown>;
}

function noFloats(value: unknown, where: string): void {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw invalid(`${where} holds ${value}: fold math is integer or fixed-point decimal strings, never floats`);
  if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) noFloats(v, `${where}.${k}`);
}

/** A literal node path: components of `[A-Za-z0-9._-]`, not starting with `.`. */
export function assertNodePath(path: string, where: string): string {
  if (typeof path !== 'string' || path === '' || !path.split('/').every((c) => COMPONENT.test(c)))
    throw invalid(`${where}: invalid path ${JSON.stringify(path)} (components of A-Z a-z 0-9 . _ -, not starting with ".")`);
  return path;
}

function checkTemplate(path: unknown, where: string): string {
  if (typeof path !== 'string' || path === '') throw invalid(`${where}: path must be a non-empty string`);
  for (const component of path.split('/')) {
    const source = /^\{(.+)\}$/.exec(component)?.[1];
    if (source !== undefined ? !SOURCE.test(source) : !COMPONENT.test(component))
      throw invalid(`${where}: invalid path component ${JSON.stringify(component)} in ${JSON.stringify(path)}`);
  }
  return path;
}

function checkGlob(path: unknown, where: string): string {
  if (typeof path !== 'string' || !path.split('/').every((c) => c === '*' || COMPONENT.test(c)))
    throw invalid(`${where}: invalid path pattern ${JSON.stringify(path)}`);
  return path;
}

function checkOp(raw: unknown, where: string): FoldOp {
  const op = closed(raw, where, ['op', 'path', 'value', 'from', 'by']);
  if (typeof op.op !== 'string' || !OPS.has(op.op as OpName))
    throw invalid(`${where}: unknown op ${JSON.stringify(op.op)} (set, merge, increment, append, delete)`);
  const out: FoldOp = { op: op.op as OpName, path: checkTemplate(op.path, where) };
  if (op.from !== undefined && (typeof op.from !== 'string' || !SOURCE.test(op.from)))
    throw invalid(`${where}: from must name payload[.key...], actor, ulid, type, ts or ns`);
  noFloats(op.value, `${where}.value`);
  noFloats(op.by, `${where}.by`);
  const has = (key: string) => op[key] !== undefined;
  switch (out.op) {
    case 'set':
    case 'merge':
    case 'append':
      if (has('value') === has('from')) throw invalid(`${where}: ${out.op} takes exactly one of value or from`);
      if (has('by')) throw invalid(`${where}: ${out.op} takes no by`);
      break;
    case 'increment':
      if (has('value') || (has('by') && has('from'))) throw invalid(`${where}: increment takes by or from`);
      if (has('by') && !(Number.isSafeInteger(op.by) || (typeof op.by === 'string' && /^-?\d+(\.\d+)?$/.test(op.by))))
        throw invalid(`${where}: by must be an integer or a decimal string`);
      break;
    case 'delete':
      if (has('value') || has('from') || has('by')) throw invalid(`${where}: delete takes only a path`);
      break;
  }
  if (has('value')) out.value = op.value;
  if (has('from')) out.from = op.from as string;
  if (has('by')) out.by = op.by as number | string;
  if (out.op === 'merge' && has('value') && (op.value === null || typeof op.value !== 'object' || Array.isArray(op.value)))
    throw invalid(`${where}: merge needs an object value`);
  return out;
}

/** Derived nodes in an order where each comes after the derived nodes it sums; refuses cycles. */
export function derivedOrder(derived: readonly DerivedNode[]): DerivedNode[] {
  const byPath = new Map(derived.map((d) => [d.path, d]));
  const order: DerivedNode[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: DerivedNode, trail: string[]) => {
    if (state.get(node.path) === 'done') return;
    if (state.get(node.path) === 'visiting') throw invalid(`derived nodes form a cycle: ${[...trail, node.path].join(' -> ')}`);
    state.set(node.path, 'visiting');
    for (const input of node.sum) {
      const dependency = byPath.get(input);
      if (dependency) visit(dependency, [...trail, node.path]);
    }
    state.set(node.path, 'done');
    order.push(node);
  };
  for (const node of derived) visit(node, []);
  return order;
}

/** Validates a parsed spec; throws `invalid_fold_spec` naming what is wrong. */
export function checkFoldSpec(value: unknown): FoldSpec {
  const raw = closed(value, 'fold spec', ['version', 'math', 'rules', 'derived', 'private']);
  if (raw.version !== 1) throw invalid(`fold spec version must be 1, got ${JSON.stringify(raw.version)}`);
  const spec: FoldSpec = { version: 1, rules: [] };
  if (raw.math !== undefined) {
    const math = closed(raw.math, 'math', ['scale']);
    if (!Number.isSafeInteger(math.scale) || (math.scale as number) < 0 || (math.scale as number) > 18)
      throw invalid('math.scale must be an integer from 0 to 18 (digits after the decimal point)');
    spec.math = { scale: math.scale as number };
  }
  if (!Array.isArray(raw.rules)) throw invalid('rules must be an array');
  spec.rules = raw.rules.map((rawRule, i) => {
    const rule = closed(rawRule, `rules[${i}]`, ['on', 'ops']);
    const on = rule.on;
    if (!(typeof on === 'string' || (Array.isArray(on) && on.length > 0 && on.every((t) => typeof t === 'string'))))
      throw invalid(`rules[${i}].on must be an event type pattern or a list of them`);
    if (!Array.isArray(rule.ops)) throw invalid(`rules[${i}].ops must be an array`);
    return { on: on as string | string[], ops: rule.ops.map((op, j) => checkOp(op, `rules[${i}].ops[${j}]`)) };
  });
  if (raw.derived !== undefined) {
    if (!Array.isArray(raw.derived)) throw invalid('derived must be an array');
    spec.derived = raw.derived.map((rawNode, i) => {
      const node = closed(rawNode, `derived[${i}]`, ['path', 'sum']);
      if (!Array.isArray(node.sum) || node.sum.length === 0) throw invalid(`derived[${i}].sum must list node paths`);
      return {
        path: assertNodePath(node.path as string, `derived[${i}]`),
        sum: node.sum.map((p, j) => assertNodePath(p as string, `derived[${i}].sum[${j}]`)),
      };
    });
    const targets = new Set(spec.rules.flatMap((r) => r.ops.map((o) => o.path)));
    for (const node of spec.derived) {
      if (targets.has(node.path)) throw invalid(`derived node ${node.path} is also written by an op`);
    }
    derivedOrder(spec.derived);
  }
  if (raw.private !== undefined) {
    if (!Array.isArray(raw.private)) throw invalid('private must be an array');
    spec.private = raw.private.map((rawRule, i) => {
      const rule = closed(rawRule, `private[${i}]`, ['path', 'capability', 'location']);
      if (typeof rule.capability !== 'string' || !URI.test(rule.capability)) throw invalid(`private[${i}].capability must be a URI`);
      if (rule.location !== undefined && (typeof rule.location !== 'string' || !URI.test(rule.location)))
        throw invalid(`private[${i}].location must be a URI`);
      return {
        path: checkGlob(rule.path, `private[${i}]`),
        capability: rule.capability,
        ...(rule.location !== undefined ? { location: rule.location as string } : {}),
      };
    });
  }
  return spec;
}

/** Parses a spec written as YAML 1.2 or JSON and validates it. */
export function parseFoldSpec(text: string): FoldSpec {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw invalid(`fold spec is not valid YAML or JSON: ${(err as Error).message}`);
  }
  return checkFoldSpec(value);
}

/** The canonical bytes of a validated spec (stored at `fold/spec.json` of every checkpoint). */
export function foldSpecBytes(spec: FoldSpec): Uint8Array {
  return canonicalBytes(spec);
}

/** `sha256:<hex>` of the canonical spec bytes. */
export function foldRoot(spec: FoldSpec): string {
  return `sha256:${createHash('sha256').update(foldSpecBytes(spec)).digest('hex')}`;
}

/** `integer` or `fixed-dec<scale>`: the `Fold-Math` trailer. */
export function foldMath(spec: FoldSpec): string {
  const scale = spec.math?.scale ?? 0;
  return scale === 0 ? 'integer' : `fixed-dec${scale}`;
}
