import type { GitObject, ObjectStore, Oid } from '../../engine/git/ports.js';

/** `store` as it is, except that the id of every object read is added to `reads`. */
export function recordingReads(store: ObjectStore, reads: Set<Oid>): ObjectStore {
  return {
    read: (oid: Oid): GitObject => {
      reads.add(oid);
      return store.read(oid);
    },
    has: (oid) => store.has(oid),
    write: (type, body) => store.write(type, body),
    writeMany: (objects) => store.writeMany(objects),
    openBatch: () => store.openBatch(),
  };
}
