/**
 * The ObjectStore adapter over a real `.git/objects` directory: packs first (where nearly all
 * objects of a large repo live), then loose objects; the object directories it borrows from
 * (`objects/info/alternates`) are read as its own, while writes go to its own. New packs written
 * by anyone (us or stock git) are picked up on the next miss.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { GatosError } from '../errors.js';
import { objectDirs } from './alternates.js';
import { countLoose, readLoose, writeLoose } from './loose-objects.js';
import { decodeOidInto, hashObject } from './oid.js';
import { PackFile } from './pack-file.js';
import { isPrepared, PackWriter, prepareObject } from './pack-writer.js';
import type { GitObject, ObjectBatch, ObjectStore, ObjectType, Oid, PreparedObject, ReadTotals } from './ports.js';

/**
 * Packs with at most this many objects have their ids in one map: group commits and small
 * batches leave many such packs, and searching each index on every miss would cost O(packs).
 */
const SMALL_PACK = 4096;

export class FileObjectStore implements ObjectStore {
  /** Where this store writes, and the first place it reads. */
  readonly objectsDir: string;
  /** `objectsDir` and the alternates it borrows from, in the order they are searched. */
  private readonly dirs: string[];
  /** Open packs by the path of their index. */
  private packs = new Map<string, PackFile>();
  /** Large packs, searched one by one (few of them). */
  private largePacks: PackFile[] = [];
  /** Raw id (latin1) -> the small pack holding it. */
  private readonly inSmallPack = new Map<string, PackFile>();
  /** Packs by the order they were opened in: a pack's share of the position space. */
  private readonly packRank = new Map<PackFile, number>();
  private packsLoaded = false;
  /** Objects returned by `read` and the bytes of their bodies (progress reports). */
  readonly readTotals: ReadTotals = { objects: 0, bytes: 0 };

  /** `compactIndexAbove`: object count above which pack indexes are held compact (tests lower it). */
  constructor(
    gitDir: string,
    private readonly options: { compactIndexAbove?: number } = {},
  ) {
    this.objectsDir = resolve(gitDir, 'objects');
    this.dirs = objectDirs(this.objectsDir);
  }

  /** (Re)scans each `pack` directory for index files; keeps packs already open. */
  private loadPacks(): void {
    this.packsLoaded = true;
    for (const objects of this.dirs) {
      const dir = join(objects, 'pack');
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name);
        if (!name.endsWith('.idx') || name.startsWith('tmp_') || this.packs.has(path)) continue;
        // A .pack without its .idx is still being written (git renames the .idx last): skip it.
        if (!existsSync(path.replace(/\.idx$/, '.pack'))) continue;
        let pack: PackFile;
        try {
          pack = PackFile.open(path, this.options);
        } catch (err) {
          // A concurrent `git gc`/`git repack` removed it after the listing: its objects are in the new pack.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        this.packs.set(path, pack);
        this.packRank.set(pack, this.packRank.size);
        if (pack.index.count > SMALL_PACK) this.largePacks.push(pack);
        else for (let i = 0; i < pack.index.count; i++) this.inSmallPack.set(pack.index.rawOidAt(i).toString('latin1'), pack);
      }
    }
  }

  /** A loose object from the first object directory that has it. */
  private readLoose(oid: Oid): GitObject | undefined {
    for (const dir of this.dirs) {
      const found = readLoose(dir, oid);
      if (found) return found;
    }
    return undefined;
  }

  /** The id being read, as bytes (see `read`). */
  private readonly wanted = Buffer.alloc(20);

  /** The pack that answered last: objects read together usually live in the same pack. */
  private lastHit: PackFile | undefined;

  /**
   * Asks the packs that may hold an id, most likely first: the last pack that answered, the
   * small-pack map, then the large packs. The pack that answers becomes the last hit.
   */
  private probe<T>(oid: Buffer, ask: (pack: PackFile) => T | undefined): T | undefined {
    const last = this.lastHit;
    const answer = last && ask(last);
    if (answer !== undefined) return answer;
    const small = this.inSmallPack.get(oid.toString('latin1'));
    for (const pack of small ? [small] : this.largePacks) {
      if (pack === last) continue;
      const found = ask(pack);
      if (found !== undefined) {
        this.lastHit = pack;
        return found;
      }
    }
    return undefined;
  }

  private readPacked(oid: Buffer, transient = false): GitObject | undefined {
    return this.probe(oid, (pack) => pack.read(oid, this.external, transient));
  }

  private readonly external = (base: Buffer): GitObject | undefined => this.readPackedOrLoose(base);

  private readPackedOrLoose(oid: Buffer): GitObject | undefined {
    return this.readPacked(oid) ?? this.readLoose(oid.toString('hex'));
  }

  read(oid: Oid): GitObject {
    return this.readObject(oid, false);
  }

  readTransient(oid: Oid): GitObject {
    return this.readObject(oid, true);
  }

  private readObject(oid: Oid, transient: boolean): GitObject {
    // Decoding is the boundary check; the bytes go to a buffer kept for it (reads do not nest:
    // a delta's base is looked up by the pack's own bytes).
    const raw = this.wanted;
    if (!decodeOidInto(oid, raw)) throw new GatosError('invalid_oid', `not an object id: ${JSON.stringify(oid)}`, { oid });
    if (!this.packsLoaded) this.loadPacks();
    const found = this.readPacked(raw, transient) ?? this.readLoose(oid.toLowerCase()) ?? this.readLate(raw);
    if (!found) throw this.notFound(oid);
    this.readTotals.objects++;
    this.readTotals.bytes += found.body.length;
    return found;
  }

  /**
   * `object_not_found`; in a shallow repository (`git clone --depth`, `git fetch --depth`) the
   * likely cause, history past its shallow commits never fetched, is named with the way out.
   */
  private notFound(oid: Oid): GatosError {
    const shallow = existsSync(join(dirname(this.objectsDir), 'shallow'));
    const hint = shallow
      ? ' (the repository is shallow: history past its shallow commits was not fetched; `git fetch --unshallow` fetches it)'
      : '';
    return new GatosError('object_not_found', `object ${oid} not found${hint}`, { oid, ...(shallow ? { shallow } : {}) });
  }

  /** A miss may be an object in a pack written since the packs were listed: list them again. */
  private readLate(raw: Buffer): GitObject | undefined {
    const before = this.packs.size;
    this.loadPacks();
    return this.packs.size > before ? this.readPacked(raw) : undefined;
  }

  /** Objects in the packs plus loose objects (counted by name, not opened). */
  storedObjects(): number {
    if (!this.packsLoaded) this.loadPacks();
    let count = 0;
    for (const pack of this.packs.values()) count += pack.index.count;
    for (const objects of this.dirs) count += countLoose(objects);
    return count;
  }

  position(oid: Oid): number | undefined {
    const raw = this.wanted;
    if (!decodeOidInto(oid, raw)) return undefined;
    if (!this.packsLoaded) this.loadPacks();
    return this.probe(raw, (pack) => {
      const offset = pack.offsetOf(raw);
      // 2^40 bytes per pack: positions stay exact integers for thousands of packs.
      return offset === -1 ? undefined : (this.packRank.get(pack) ?? 0) * 2 ** 40 + offset;
    });
  }

  has(oid: Oid): boolean {
    if (!this.packsLoaded) this.loadPacks();
    const raw = Buffer.from(oid, 'hex');
    if (this.probe(raw, (pack) => pack.index.find(raw) !== -1 || undefined)) return true;
    return this.dirs.some((dir) => existsSync(join(dir, oid.slice(0, 2), oid.slice(2))));
  }

  write(type: ObjectType, body: Uint8Array, knownOid?: Oid): Oid {
    const oid = knownOid ?? hashObject(type, body);
    if (!this.has(oid)) writeLoose(this.objectsDir, oid, type, body);
    return oid;
  }

  writeMany(objects: Iterable<GitObject | PreparedObject>): Oid[] {
    const batch = this.openBatch();
    const oids: Oid[] = [];
    try {
      for (const object of objects) {
        const prepared = isPrepared(object) ? object : prepareObject(object.type, object.body, 1, object.oid);
        batch.add(prepared);
        oids.push(Buffer.from(prepared.oid).toString('hex'));
      }
    } catch (err) {
      batch.abort();
      throw err;
    }
    batch.finish();
    return oids;
  }

  openBatch(): ObjectBatch {
    const writer = new PackWriter(this.objectsDir);
    return {
      add: (object) => writer.addPrepared(isPrepared(object) ? object : prepareObject(object.type, object.body, 1, object.oid)),
      finish: () => {
        const written = writer.finish();
        this.loadPacks();
        // What was just written is what gets read next (a topic's head, a journal's tip).
        if (written) this.lastHit = this.packs.get(written.idxPath) ?? this.lastHit;
      },
      abort: () => writer.abort(),
    };
  }

  /** Opens a streaming pack writer on this store (for bulk writers that prepare objects in workers). */
  packWriter(options: { unique?: boolean } = {}): PackWriter {
    return new PackWriter(this.objectsDir, options);
  }

  /** Makes packs written through `packWriter()` visible to reads. */
  refresh(): void {
    this.loadPacks();
  }

  close(): void {
    for (const pack of this.packs.values()) pack.close();
    this.packs.clear();
    this.packRank.clear();
    this.largePacks = [];
    this.inSmallPack.clear();
    this.lastHit = undefined;
    this.packsLoaded = false;
  }
}
