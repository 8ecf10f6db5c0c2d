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

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_json', message, data);
}

/** Keys compared as UTF-16 code unit sequences (JS string comparison is exactly that). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts an object's keys in place. Objects are mostly small and often already in order, and
 * `Array.prototype.sort` allocates a work area per call, so short lists are insertion-sorted.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort(compareKeys);
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/**
 * Whether a string holds no lone surrogate: ES2024's `isWellFormed`, which Node 20 has and the
 * ES2022 library this project compiles against does not declare. Several times faster than a
 * regular expression looking for one (~9 against ~32 ns for a short ASCII string: V8 answers at
 * once for strings stored one byte per character), and every key and string value goes through it.
 */
const isWellFormed = (value: string): boolean => (value as unknown as { isWellFormed(): boolean }).isWellFormed();

function serializeString(value: string, at: Array<string | number>): string {
  if (!isWellFormed(value)) throw invalid(`${pathOf(at)} contains a lone surrogate, which RFC 8785 cannot represent`, { path: pathOf(at) });
  return JSON.stringify(value);
}

/**
 * Where a value sits, as `$.a[0].b`. Built only for an error message: `at` is the stack of
 * keys and indexes that serialize keeps as it descends (a string per value would be garbage).
 */
function pathOf(at: ReadonlyArray<string | number>): string {
  return at.reduce<string>((path, step) => (typeof step === 'number' ? `${path}[${step}]` : `${path}.${step}`), '$');
}

function serialize(value: unknown, at: Array<string | number>): string {
  switch (typeof value) {
    case 'string':
      return serializeString(value, at);
    case 'number':
      if (!Number.isFinite(value)) {
        const path = pathOf(at);
        throw invalid(`${path} is ${value}, which has no JSON form`, { path });
      }
      return JSON.stringify(value); // ECMAScript Number::toString; -0 -> "0"
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          at.push(i);
          out += i === 0 ? serialize(value[i], at) : `,${serialize(value[i], at)}`;
          at.pop();
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        const path = pathOf(at);
        throw invalid(`${path} is a ${proto?.constructor?.name ?? 'non-plain'} object, not JSON`, { path });
      }
      const keys = sortKeys(Object.keys(value));
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const item = (value as Record<string, unknown>)[key];
        at.push(key);
        if (item === undefined) {
          const path = pathOf(at);
          throw invalid(`${path} is undefined, not JSON`, { path });
        }
        out += `${i === 0 ? '' : ','}${serializeString(key, at)}:${serialize(item, at)}`;
        at.pop();
      }
      return `${out}}`;
    }
    default: {
      const path = pathOf(at);
      throw invalid(`${path} is a ${typeof value}, not JSON`, { path });
    }
  }
}

/**
 * Whether `JSON.stringify(value)` already is the canonical text: every object plain with its keys
 * (in the order JSON.stringify takes them, Object.keys') strictly increasing, every string well
 * formed, every number finite, nothing else. Looks at each value once; allocates only the key lists.
 */
function stringifiesCanonically(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value);
    case 'number':
      return Number.isFinite(value);
    case 'boolean':
      return true;
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        // Not an array subclass (JSON.stringify would call a toJSON it defines). A hole reads as
        // undefined, which fails here and is refused by `serialize`.
        if (Object.getPrototypeOf(value) !== Array.prototype) return false;
        for (let i = 0; i < value.length; i++) if (!stringifiesCanonically(value[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = Object.keys(value);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if ((i > 0 && !((keys[i - 1] as string) < key)) || !isWellFormed(key)) return false;
        if (!stringifiesCanonically((value as Record<string, unknown>)[key])) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** The canonical JSON text of `value`. Throws `invalid_json` for values JSON cannot carry. */
export function canonicalize(value: unknown): string {
  // Most values come with their keys in order already (parsed from canonical JSON, decoded by
  // dag-cbor-json, built in order): one native JSON.stringify writes them as one flat string, where
  // `serialize` concatenates a string per key and value (the exporter's largest source of garbage).
  return stringifiesCanonically(value) ? JSON.stringify(value) : serialize(value, []);
}

/** The canonical form as UTF-8 bytes (what content ids hash). */
export function canonicalBytes(value: unknown): Uint8Array {
  // Buffer.from, not TextEncoder: the same UTF-8 (lone surrogates become U+FFFD either way) in
  // a fifth of the time for a few hundred bytes, from Node's pool instead of an ArrayBuffer each.
  return Buffer.from(canonicalize(value), 'utf8');
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
