/**
 * An in-memory ObjectStore with the same ids and errors as the file adapter; for property tests
 * and for planes exercised without a disk.
 */

import { inflateSync } from 'node:zlib';
import { GatosError } from '../errors.js';
import { hashObject } from './oid.js';
import { isPrepared } from './pack-writer.js';
import type { GitObject, ObjectBatch, ObjectStore, ObjectType, Oid, PreparedObject } from './ports.js';

export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<Oid, GitObject>();

  read(oid: Oid): GitObject {
    const object = this.objects.get(oid);
    if (!object) throw new GatosError('object_not_found', `object ${oid} not found`, { oid });
    return object;
  }

  has(oid: Oid): boolean {
    return this.objects.has(oid);
  }

  write(type: ObjectType, body: Uint8Array): Oid {
    const oid = hashObject(type, body);
    if (!this.objects.has(oid)) this.objects.set(oid, { type, body: Uint8Array.from(body) });
    return oid;
  }

  writeMany(objects: Iterable<GitObject | PreparedObject>): Oid[] {
    return Array.from(objects, (object) => this.write(object.type, isPrepared(object) ? inflateSync(object.deflated) : object.body));
  }

  openBatch(): ObjectBatch {
    let pending: Array<GitObject | PreparedObject> = [];
    return {
      add: (object) => pending.push(object),
      finish: () => this.writeMany(pending.splice(0)),
      abort: () => {
        pending = [];
      },
    };
  }

  get size(): number {
    return this.objects.size;
  }
}
