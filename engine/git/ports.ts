/**
 * The ports the planes use to reach Git storage. Planes receive an ObjectStore and a RefStore;
 * they never touch `.git` files. Adapters: `FileObjectStore`/`FileRefStore` (a real `.git`
 * directory, shared with stock git) and `MemoryObjectStore`/`MemoryRefStore` (tests).
 *
 * The ports are synchronous on purpose: both adapters do plain file or map work, hot paths run
 * inside worker threads where blocking is free, and sync calls avoid a promise per object on
 * scans of millions of objects (docs/decisions/0001-object-layer.md).
 */

/** A Git object id: 40 lowercase hex digits (SHA-1 repositories). */
export type Oid = string;

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

/** An object's type and its body (the bytes after the `<type> <size>\0` header). */
export interface GitObject {
  readonly type: ObjectType;
  readonly body: Uint8Array;
  /** Its id, when the producer already computed it (writers then skip hashing again). */
  readonly oid?: Oid;
}

/** An object already hashed and zlib-compressed: what a pack entry needs. Plain data. */
export interface PreparedObject {
  oid: Uint8Array;
  type: ObjectType;
  size: number;
  deflated: Uint8Array;
}

export interface ObjectStore {
  /** Reads an object; throws `object_not_found` when absent, `corrupt_*` when damaged. */
  read(oid: Oid): GitObject;
  /**
   * `read` for a caller that is done with the body before it reads again from this store (it
   * parses the body into values of its own): the body may then be a view of memory the store
   * reads into again later (a pack window), which spares copying bodies stored uncompressed.
   * Optional; `readTransient` (object-codec.ts) falls back to `read`.
   */
  readTransient?(oid: Oid): GitObject;
  has(oid: Oid): boolean;
  /**
   * Stores one object (a loose object on disk) and returns its id. Idempotent. `knownOid`, when
   * given, must be the id of (type, body): the store trusts it.
   */
  write(type: ObjectType, body: Uint8Array, knownOid?: Oid): Oid;
  /**
   * Stores many objects at once (a packfile on disk). Objects may come already hashed and
   * compressed (`PreparedObject`, e.g. from worker threads). Returns their ids in input order.
   */
  writeMany(objects: Iterable<GitObject | PreparedObject>): Oid[];
  /**
   * `writeMany` for producers that await between objects (e.g. on worker threads): objects are
   * added over time and become readable together at `finish()`; `abort()` drops them.
   */
  openBatch(): ObjectBatch;
  /** Objects read so far and their bytes (bodies); for progress reports. Optional. */
  readonly readTotals?: ReadTotals;
  /** How many objects the store holds (packed and loose), cheaply; for progress estimates. Optional. */
  storedObjects?(): number;
  /**
   * Where an object lies in storage, as a number that orders reads: objects read in increasing
   * position are read front to back through each pack. Undefined when not packed (or unknown).
   * A hint only, from the pack indexes (nothing is read). Optional.
   */
  position?(oid: Oid): number | undefined;
}

/** Objects read and the bytes of their bodies. */
export interface ReadTotals {
  objects: number;
  bytes: number;
}

/** Objects written as one unit (one packfile on disk); see `ObjectStore.openBatch`. */
export interface ObjectBatch {
  add(object: GitObject | PreparedObject): void;
  finish(): void;
  abort(): void;
}

export interface RefEntry {
  readonly name: string;
  readonly oid: Oid;
}

export interface RefStore {
  /** The oid a ref points at (following symbolic refs), or undefined when it does not exist. */
  resolve(name: string): Oid | undefined;
  /** All refs whose full name starts with `prefix`, sorted by name (byte order, as git does). */
  list(prefix: string): RefEntry[];
  /** Starts an all-or-nothing update of several refs. */
  transaction(): RefTransaction;
}

/**
 * Compare-and-swap updates over several refs. `commit()` applies all of them or none; when any
 * ref does not hold its expected old value it throws a `HEAD_CONFLICT` GatosError naming the
 * ref, the expected and the actual oid. `ZERO_OID` as expected old means "must not exist".
 */
export interface RefTransaction {
  create(name: string, newOid: Oid): this;
  update(name: string, newOid: Oid, expectedOld: Oid): this;
  delete(name: string, expectedOld: Oid): this;
  commit(): void;
}
