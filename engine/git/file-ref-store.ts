/**
 * The RefStore adapter over a real `.git` directory, interoperable with stock git: refs are
 * resolved loose-then-packed, and transactions take the same `<ref>.lock` files git takes
 * (exclusive create; verify old values only once every lock is held; write; rename), so a
 * concurrent `git update-ref` and our writers exclude each other in both directions.
 * Reflogs are not written: git only keeps them by default for branches and HEAD.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GatosError } from '../errors.js';
import { makeDirs, writeAll } from '../whole-writes.js';
import { isOid, ZERO_OID } from './oid.js';
import type { Oid, RefEntry, RefStore, RefTransaction } from './ports.js';
import { assertRefName } from './refname.js';

/** git's default core.filesRefLockTimeout: keep trying a held lock this long before giving up. */
const LOCK_TIMEOUT_MS = 100;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number): void => {
  Atomics.wait(sleeper, 0, 0, ms);
};

interface PackedRefs {
  key: string;
  refs: Map<string, Oid>;
  header: string;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export class FileRefStore implements RefStore {
  private packedCache: PackedRefs | undefined;

  constructor(readonly gitDir: string) {}

  private packedPath(): string {
    return join(this.gitDir, 'packed-refs');
  }

  /** Parsed packed-refs, re-read only when the file changed (inode, size or mtime). */
  packed(): PackedRefs {
    let key = 'absent';
    try {
      const st = statSync(this.packedPath(), { bigint: true });
      key = `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
    if (this.packedCache?.key === key) return this.packedCache;
    const refs = new Map<string, Oid>();
    let header = '# pack-refs with: peeled fully-peeled sorted \n';
    if (key !== 'absent') {
      const text = readFileSync(this.packedPath(), 'utf8');
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('^')) continue;
        if (line.startsWith('#')) {
          header = `${line}\n`;
          continue;
        }
        const oid = line.slice(0, 40);
        const name = line.slice(41);
        if (!isOid(oid) || line[40] !== ' ' || name === '')
          throw new GatosError('corrupt_ref', `packed-refs has a malformed line: ${JSON.stringify(line)}`, { line });
        refs.set(name, oid);
      }
    }
    this.packedCache = { key, refs, header };
    return this.packedCache;
  }

  /** The loose value: an oid, `ref: <target>`, or undefined when there is no loose file. */
  private readLoose(name: string): string | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.gitDir, name), 'utf8');
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    const value = text.trim();
    if (isOid(value) || /^ref: refs\/\S+$/.test(value) || value === 'ref: HEAD') return value;
    throw new GatosError('corrupt_ref', `ref ${name} holds ${JSON.stringify(text.slice(0, 80))}`, { ref: name });
  }

  /** The oid a ref holds directly (no symref following); loose wins over packed. */
  private direct(name: string): string | undefined {
    return this.readLoose(name) ?? this.packed().refs.get(name);
  }

  resolve(name: string): Oid | undefined {
    let current = name;
    for (let depth = 0; depth < 5; depth++) {
      const value = this.direct(current);
      if (value === undefined) return undefined;
      if (!value.startsWith('ref: ')) return value;
      current = value.slice(5);
    }
    throw new GatosError('corrupt_ref', `symbolic ref ${name} nests too deeply`, { ref: name });
  }

  list(prefix: string): RefEntry[] {
    const found = new Map<string, Oid>();
    for (const [name, oid] of this.packed().refs) if (name.startsWith(prefix)) found.set(name, oid);
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1) || 'refs/';
    this.walkLoose(base, (name) => {
      if (!name.startsWith(prefix)) return;
      const value = this.readLoose(name);
      if (value === undefined) return;
      const oid = value.startsWith('ref: ') ? this.resolve(name) : value;
      if (oid) found.set(name, oid);
    });
    return [...found].map(([name, oid]) => ({ name, oid })).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  }

  private walkLoose(dir: string, visit: (name: string) => void): void {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(join(this.gitDir, dir), { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) this.walkLoose(`${dir}${entry.name}/`, visit);
      else if (entry.isFile() && !entry.name.endsWith('.lock')) visit(`${dir}${entry.name}`);
    }
  }

  transaction(): RefTransaction {
    return new FileRefTransaction(this);
  }

  /** Current direct value of a ref as an oid, ZERO_OID when absent (for CAS checks). */
  current(name: string): Oid {
    const value = this.direct(name);
    if (value === undefined) return ZERO_OID;
    return value.startsWith('ref: ') ? (this.resolve(name) ?? ZERO_OID) : value;
  }
}

interface Update {
  name: string;
  newOid: Oid; // ZERO_OID = delete
  expectedOld: Oid;
}

class FileRefTransaction implements RefTransaction {
  private readonly updates: Update[] = [];
  private used = false;

  constructor(private readonly store: FileRefStore) {}

  private add(name: string, newOid: Oid, expectedOld: Oid): this {
    assertRefName(name);
    for (const oid of [newOid, expectedOld]) {
      if (!isOid(oid)) throw new GatosError('invalid_oid', `not an object id: ${JSON.stringify(oid)}`, { ref: name, oid });
    }
    if (this.updates.some((u) => u.name === name))
      throw new GatosError('invalid_argument', `ref ${name} appears twice in one transaction`, { ref: name });
    this.updates.push({ name, newOid, expectedOld });
    return this;
  }

  create(name: string, newOid: Oid): this {
    if (newOid === ZERO_OID) throw new GatosError('invalid_oid', 'cannot create a ref pointing at the zero oid', { ref: name });
    return this.add(name, newOid, ZERO_OID);
  }

  update(name: string, newOid: Oid, expectedOld: Oid): this {
    if (newOid === ZERO_OID) throw new GatosError('invalid_oid', 'use delete() to remove a ref', { ref: name });
    return this.add(name, newOid, expectedOld);
  }

  delete(name: string, expectedOld: Oid): this {
    return this.add(name, ZERO_OID, expectedOld);
  }

  commit(): void {
    if (this.used) throw new GatosError('invalid_argument', 'a transaction can be committed once');
    this.used = true;
    const gitDir = this.store.gitDir;
    const updates = [...this.updates].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const held: Array<{ path: string; fd: number }> = [];
    let done = false;
    try {
      for (const update of updates) held.push(takeLock(gitDir, update.name));
      // packed-refs is looked at once per transaction (it is not locked here, as in git).
      const packed = this.store.packed();
      for (const update of updates) {
        const actual = this.store.current(update.name);
        if (actual !== update.expectedOld) {
          throw new GatosError('HEAD_CONFLICT', `ref ${update.name} is at ${actual}, expected ${update.expectedOld}`, {
            ref: update.name,
            expected: update.expectedOld,
            actual,
          });
        }
        if (update.newOid !== ZERO_OID) checkDirectoryConflict(this.store, packed, update.name, updates);
      }
      const packedDeletes = updates.filter((u) => u.newOid === ZERO_OID && packed.refs.has(u.name));
      if (packedDeletes.length > 0) {
        const packedLock = takeLock(gitDir, 'packed-refs');
        held.push(packedLock);
        writePackedWithout(this.store, packedLock, new Set(packedDeletes.map((u) => u.name)));
      }
      updates.forEach((update, i) => {
        const lock = held[i] as { path: string; fd: number };
        if (update.newOid !== ZERO_OID) writeAll(lock.fd, `${update.newOid}\n`);
        closeSync(lock.fd);
        lock.fd = -1;
      });
      if (packedDeletes.length > 0) {
        const packedLock = held[held.length - 1] as { path: string; fd: number };
        closeSync(packedLock.fd);
        packedLock.fd = -1;
        renameSync(packedLock.path, join(gitDir, 'packed-refs'));
        packedLock.path = '';
      }
      updates.forEach((update, i) => {
        const lock = held[i] as { path: string; fd: number };
        const target = join(gitDir, update.name);
        if (update.newOid !== ZERO_OID) {
          renameSync(lock.path, target);
        } else {
          if (existsSync(target)) unlinkSync(target);
          unlinkSync(lock.path);
          pruneEmptyDirs(gitDir, update.name);
        }
        lock.path = '';
      });
      done = true;
    } finally {
      if (!done) releaseLocks(held);
    }
  }
}

function makeRefDirectory(name: string, path: string): void {
  try {
    makeDirs(dirname(path));
  } catch (err) {
    if (errno(err) === 'EEXIST' || errno(err) === 'ENOTDIR') {
      throw new GatosError('ref_dir_conflict', `cannot create ${name}: a ref exists where a directory of its path should be`, {
        ref: name,
      });
    }
    throw err;
  }
}

function takeLock(gitDir: string, name: string): { path: string; fd: number } {
  const path = join(gitDir, `${name}.lock`);
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let madeDirectory = false;
  for (let attempt = 0; ; attempt++) {
    try {
      return { path, fd: openSync(path, 'wx', 0o644) };
    } catch (err) {
      // The directory is made only when missing: one syscall less per lock in the common case.
      if (errno(err) === 'ENOENT' && !madeDirectory) {
        makeRefDirectory(name, path);
        madeDirectory = true;
        continue;
      }
      if (errno(err) === 'ENOTDIR')
        throw new GatosError('ref_dir_conflict', `cannot create ${name}: a ref exists where a directory of its path should be`, {
          ref: name,
        });
      if (errno(err) !== 'EEXIST') throw err;
      if (Date.now() >= deadline)
        throw new GatosError('ref_locked', `${name} is locked by another writer (${path} exists)`, { ref: name, lock: path });
      sleep(Math.min(1 + attempt, 10));
    }
  }
}

function checkDirectoryConflict(store: FileRefStore, packed: PackedRefs, name: string, updates: readonly Update[]): void {
  const target = join(store.gitDir, name);
  let isDir = false;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    isDir = false;
  }
  const deleting = new Set(updates.filter((u) => u.newOid === ZERO_OID).map((u) => u.name));
  const packedChild = [...packed.refs.keys()].some((other) => other.startsWith(`${name}/`) && !deleting.has(other));
  const packedParent = [...packed.refs.keys()].some((other) => name.startsWith(`${other}/`) && !deleting.has(other));
  if ((isDir && readdirSync(target).length > 0) || packedChild || packedParent) {
    throw new GatosError('ref_dir_conflict', `cannot create ${name}: it would be both a ref and a directory of refs`, { ref: name });
  }
  if (isDir) rmdirSync(target);
}

function writePackedWithout(store: FileRefStore, lock: { fd: number }, removed: ReadonlySet<string>): void {
  const packedPath = join(store.gitDir, 'packed-refs');
  const lines = readFileSync(packedPath, 'utf8').split('\n');
  const kept: string[] = [];
  let skipPeeled = false;
  for (const line of lines) {
    if (line.startsWith('^')) {
      if (!skipPeeled) kept.push(line);
      continue;
    }
    skipPeeled = removed.has(line.slice(41));
    if (!skipPeeled && line !== '') kept.push(line);
  }
  writeAll(lock.fd, `${kept.join('\n')}\n`);
}

function releaseLocks(held: Array<{ path: string; fd: number }>): void {
  for (const lock of held) {
    if (lock.fd >= 0) closeSync(lock.fd);
    if (lock.path) {
      try {
        unlinkSync(lock.path);
      } catch {
        // already gone
      }
    }
  }
}

/** Removes directories emptied by a delete, as git does, up to (not including) `refs/`. */
function pruneEmptyDirs(gitDir: string, name: string): void {
  let dir = dirname(name);
  while (dir.includes('/') && dir !== 'refs') {
    try {
      rmdirSync(join(gitDir, dir));
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}
