/**
 * Pure codecs for commit, tree and tag bodies. Parsing trusts nothing: malformed input raises
 * `corrupt_object`. Serializing produces exactly the bytes git writes, so ids agree with git.
 *
 * @example
 *   const body = serializeCommit({ tree, parents: [], author: sig, committer: sig, message: 'init\n' });
 *   parseCommit(body).tree === tree;
 */
import { GatosError } from '../errors.js';
import type { GitObject, ObjectStore, Oid } from './ports.js';

export interface Signature {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** Offset as git writes it, e.g. `+0000`, `-0530`. */
  timezone: string;
}

export interface Commit {
  tree: Oid;
  parents: Oid[];
  author: Signature;
  committer: Signature;
  /** Extra headers (gpgsig, encoding, mergetag...) in order, continuation lines unfolded with `\n`. */
  extraHeaders?: Array<[string, string]>;
  message: string;
}

export type TreeMode = '100644' | '100755' | '120000' | '160000' | '40000';

export interface TreeEntry {
  mode: TreeMode;
  name: string;
  oid: Oid;
}

export interface Tag {
  object: Oid;
  type: string;
  tag: string;
  tagger?: Signature;
  message: string;
}

const decoder = new TextDecoder('utf-8');

function corrupt(what: string, detail: string): GatosError {
  return new GatosError('corrupt_object', `malformed ${what}: ${detail}`, { what });
}

export function formatSignature(sig: Signature): string {
  return `${sig.name} <${sig.email}> ${sig.timestamp} ${sig.timezone}`;
}

const TIMEZONE_RE = /^[+-]\d{4}$/;

/** Parses `Name <email> <seconds> <+hhmm>`, scanning from the right as git does. */
export function parseSignature(text: string): Signature {
  const close = text.lastIndexOf('> ');
  const open = close === -1 ? -1 : text.lastIndexOf(' <', close);
  const space = text.indexOf(' ', close + 2);
  const timestamp = Number(text.slice(close + 2, space));
  const timezone = text.slice(space + 1);
  if (open === -1 || space === -1 || !Number.isInteger(timestamp) || !TIMEZONE_RE.test(timezone))
    throw corrupt('signature', JSON.stringify(text));
  return { name: text.slice(0, open), email: text.slice(open + 2, close), timestamp, timezone };
}

/** Splits `header\n...\n\nmessage` into headers (continuations unfolded) and the message. */
function splitHeaders(text: string, what: string): { headers: Array<[string, string]>; message: string } {
  const end = text.indexOf('\n\n');
  const head = end === -1 ? text.replace(/\n$/, '') : text.slice(0, end);
  const message = end === -1 ? '' : text.slice(end + 2);
  const headers: Array<[string, string]> = [];
  for (const line of head.split('\n')) {
    if (line.startsWith(' ')) {
      const last = headers[headers.length - 1];
      if (!last) throw corrupt(what, 'continuation line without a header');
      last[1] += `\n${line.slice(1)}`;
      continue;
    }
    const space = line.indexOf(' ');
    if (space <= 0) throw corrupt(what, `bad header line ${JSON.stringify(line)}`);
    headers.push([line.slice(0, space), line.slice(space + 1)]);
  }
  return { headers, message };
}

/** 40 lowercase hex digits (a char-code loop: this runs for every commit of every scan). */
function isHexId(value: string): boolean {
  if (value.length !== 40) return false;
  for (let i = 0; i < 40; i++) {
    const code = value.charCodeAt(i);
    if (!((code >= 48 && code <= 57) || (code >= 97 && code <= 102))) return false;
  }
  return true;
}

/** Reads an object whose body the caller is done with before it reads again (`ObjectStore.readTransient`). */
export function readTransient(store: Pick<ObjectStore, 'read' | 'readTransient'>, oid: Oid): GitObject {
  return store.readTransient ? store.readTransient(oid) : store.read(oid);
}

/**
 * The commit `oid` names, read from `store`: `corrupt_object`, naming the object, when it is
 * another kind of object (a journal ref moved onto a blob) or a malformed commit.
 */
export function readCommit(store: Pick<ObjectStore, 'read' | 'readTransient'>, oid: Oid): Commit {
  // The body is parsed into strings here and not kept.
  const object = readTransient(store, oid);
  if (object.type !== 'commit')
    throw new GatosError('corrupt_object', `object ${oid} is a ${object.type}, not a commit`, { what: 'commit', oid, type: object.type });
  try {
    return parseCommit(object.body);
  } catch (err) {
    if (!(err instanceof GatosError) || err.code !== 'corrupt_object') throw err;
    throw new GatosError('corrupt_object', `${err.message} (commit ${oid})`, { ...err.data, oid }, { cause: err });
  }
}

export function parseCommit(body: Uint8Array): Commit {
  const { headers, message } = splitHeaders(decoder.decode(body), 'commit');
  let tree: Oid | undefined;
  const parents: Oid[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  const extraHeaders: Array<[string, string]> = [];
  for (const [key, value] of headers) {
    if (key === 'tree' && tree === undefined) tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author' && !author) author = parseSignature(value);
    else if (key === 'committer' && !committer) committer = parseSignature(value);
    else extraHeaders.push([key, value]);
  }
  if (!tree || !isHexId(tree)) throw corrupt('commit', 'missing or invalid tree');
  if (!author || !committer) throw corrupt('commit', 'missing author or committer');
  for (const parent of parents) if (!isHexId(parent)) throw corrupt('commit', `invalid parent ${parent}`);
  const commit: Commit = { tree, parents, author, committer, message };
  if (extraHeaders.length > 0) commit.extraHeaders = extraHeaders;
  return commit;
}

export function serializeCommit(commit: Commit): Uint8Array {
  let text = `tree ${commit.tree}\n`;
  for (const parent of commit.parents) text += `parent ${parent}\n`;
  text += `author ${formatSignature(commit.author)}\ncommitter ${formatSignature(commit.committer)}\n`;
  for (const [key, value] of commit.extraHeaders ?? []) text += `${key} ${value.replaceAll('\n', '\n ')}\n`;
  text += `\n${commit.message}`;
  // Buffer.from, not TextEncoder: the same bytes, ~5x faster per commit (see canonicalBytes).
  return Buffer.from(text, 'utf8');
}

export function parseTree(body: Uint8Array): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let pos = 0;
  while (pos < bytes.length) {
    const space = bytes.indexOf(0x20, pos);
    const nul = bytes.indexOf(0, space + 1);
    if (space === -1 || nul === -1 || nul + 21 > bytes.length) throw corrupt('tree', `truncated entry at byte ${pos}`);
    const mode = bytes.toString('latin1', pos, space);
    if (!isTreeMode(mode)) throw corrupt('tree', `bad mode ${mode}`);
    entries.push({ mode, name: bytes.toString('utf8', space + 1, nul), oid: bytes.toString('hex', nul + 1, nul + 21) });
    pos = nul + 21;
  }
  return entries;
}

/**
 * The entry called `name` in a tree body, found by scanning bytes (no decoding of the other
 * entries); undefined when absent. The hot path of envelope lookups.
 */
export function findTreeEntry(body: Uint8Array, name: string): TreeEntry | undefined {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const wanted = Buffer.from(name, 'utf8');
  let pos = 0;
  while (pos < bytes.length) {
    const space = bytes.indexOf(0x20, pos);
    const nul = bytes.indexOf(0, space + 1);
    if (space === -1 || nul === -1 || nul + 21 > bytes.length) throw corrupt('tree', `truncated entry at byte ${pos}`);
    if (nul - space - 1 === wanted.length && bytes.compare(wanted, 0, wanted.length, space + 1, nul) === 0) {
      const mode = bytes.toString('latin1', pos, space);
      if (!isTreeMode(mode)) throw corrupt('tree', `bad mode ${mode}`);
      return { mode, name, oid: bytes.toString('hex', nul + 1, nul + 21) };
    }
    pos = nul + 21;
  }
  return undefined;
}

function isTreeMode(mode: string): mode is TreeMode {
  return mode === '100644' || mode === '100755' || mode === '120000' || mode === '160000' || mode === '40000';
}

/** Git orders tree entries by name, comparing directories as if their name ended in `/`. */
function treeSortKey(entry: TreeEntry): Buffer {
  return Buffer.from(entry.mode === '40000' ? `${entry.name}/` : entry.name, 'utf8');
}

export function serializeTree(entries: readonly TreeEntry[]): Uint8Array {
  const sorted = entries.map((entry) => ({ entry, key: treeSortKey(entry) })).sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { entry } of sorted) {
    if (entry.name === '' || entry.name.includes('/') || entry.name.includes('\0') || entry.name === '.' || entry.name === '..') {
      throw new GatosError('invalid_object', `invalid tree entry name ${JSON.stringify(entry.name)}`, { name: entry.name });
    }
    parts.push(Buffer.from(`${entry.mode} ${entry.name}\0`, 'utf8'), Buffer.from(entry.oid, 'hex'));
  }
  return Buffer.concat(parts);
}

export function parseTag(body: Uint8Array): Tag {
  const { headers, message } = splitHeaders(decoder.decode(body), 'tag');
  const get = (key: string): string | undefined => headers.find(([k]) => k === key)?.[1];
  const object = get('object');
  const type = get('type');
  const tag = get('tag');
  if (!object || !type || tag === undefined) throw corrupt('tag', 'missing object, type or tag header');
  const tagger = get('tagger');
  const result: Tag = { object, type, tag, message };
  if (tagger !== undefined) result.tagger = parseSignature(tagger);
  return result;
}

export function serializeTag(tag: Tag): Uint8Array {
  let text = `object ${tag.object}\ntype ${tag.type}\ntag ${tag.tag}\n`;
  if (tag.tagger) text += `tagger ${formatSignature(tag.tagger)}\n`;
  return Buffer.from(`${text}\n${tag.message}`, 'utf8');
}
