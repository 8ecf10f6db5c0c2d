/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): object keys sorted by UTF-16 code units, no
 * whitespace, strings escaped as ECMAScript's JSON.stringify does, numbers in ECMAScript's
 * shortest round-trip form. `parseJson` is the strict reader for documents that will be
 * canonicalized: duplicate keys are an error rather than "last one wins".
 *
 * @example
 *   canonicalize({ b: 2, a: [1, 'x'] }); // '{"a":[1,"x"],"b":2}'
 */
import { GatosError } from '../errors.js';

const encoder = new TextEncoder();

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_json', message, data);
}

/** Keys compared as UTF-16 code unit sequences (JS string comparison is exactly that). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serializeString(value: string): string {
  if (LONE_SURROGATE.test(value)) throw invalid('string contains a lone surrogate, which RFC 8785 cannot represent');
  return JSON.stringify(value);
}

function serializeNumber(value: number): string {
  if (!Number.isFinite(value)) throw invalid(`number ${value} has no JSON form`);
  return JSON.stringify(value); // ECMAScript Number::toString; -0 -> "0"
}

function serialize(value: unknown, path: string): string {
  switch (typeof value) {
    case 'string':
      return serializeString(value);
    case 'number':
      return serializeNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((item, i) => serialize(item, `${path}[${i}]`)).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null)
        throw invalid(`${path} is a ${proto?.constructor?.name ?? 'non-plain'} object, not JSON`, { path });
      const keys = Object.keys(value).sort(compareKeys);
      const members: string[] = [];
      for (const key of keys) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined) throw invalid(`${path}.${key} is undefined, not JSON`, { path: `${path}.${key}` });
        members.push(`${serializeString(key)}:${serialize(item, `${path}.${key}`)}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      throw invalid(`${path} is a ${typeof value}, not JSON`, { path });
  }
}

/** The canonical JSON text of `value`. Throws `invalid_json` for values JSON cannot carry. */
export function canonicalize(value: unknown): string {
  return serialize(value, '$');
}

/** The canonical form as UTF-8 bytes (what content ids hash). */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}

/**
 * Parses JSON strictly: syntax errors report their position; duplicate object keys are refused
 * (RFC 8785 §3.1 inputs must not have them). Lone surrogates are left for `canonicalize` to
 * reject.
 */
export function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`not valid JSON: ${(err as Error).message}`);
  }
  // JSON.parse keeps the last of duplicate keys silently; a key scan finds them.
  if (/[{]/.test(text)) findDuplicateKeys(text);
  return value;
}

/** Walks the JSON text tracking the keys of each open object; throws on a repeat. */
function findDuplicateKeys(text: string): void {
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        // Only a key with escapes needs decoding to compare ("\u0061" repeats "a").
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (top.has(key)) throw invalid(`duplicate key ${JSON.stringify(key)} at position ${i}`, { key, position: i });
        top.add(key);
      }
      expectKey = false;
      i = end + 1;
      continue;
    }
    if (ch === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === '[') {
      stack.push(null);
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      expectKey = stack[stack.length - 1] !== null && stack.length > 0;
    }
    i++;
  }
}
