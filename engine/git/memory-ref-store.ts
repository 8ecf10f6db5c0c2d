/**
 * An in-memory RefStore with the file adapter's validation, compare-and-swap and
 * all-or-nothing semantics; for property tests and disk-free plane tests.
 */
import { GatosError } from '../errors.js';
import { isOid, ZERO_OID } from './oid.js';
import type { Oid, RefEntry, RefStore, RefTransaction } from './ports.js';
import { assertRefName } from './refname.js';

export class MemoryRefStore implements RefStore {
  private readonly refs = new Map<string, Oid>();

  resolve(name: string): Oid | undefined {
    return this.refs.get(name);
  }

  list(prefix: string): RefEntry[] {
    return [...this.refs]
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, oid]) => ({ name, oid }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  }

  transaction(): RefTransaction {
    const refs = this.refs;
    const updates = new Map<string, { newOid: Oid; expectedOld: Oid }>();
    let used = false;
    const tx: RefTransaction = {
      create: (name, newOid) => add(name, newOid, ZERO_OID, true),
      update: (name, newOid, expectedOld) => add(name, newOid, expectedOld, true),
      delete: (name, expectedOld) => add(name, ZERO_OID, expectedOld, false),
      commit() {
        if (used) throw new GatosError('invalid_argument', 'a transaction can be committed once');
        used = true;
        for (const [name, { expectedOld }] of updates) {
          const actual = refs.get(name) ?? ZERO_OID;
          if (actual !== expectedOld)
            throw new GatosError('HEAD_CONFLICT', `ref ${name} is at ${actual}, expected ${expectedOld}`, {
              ref: name,
              expected: expectedOld,
              actual,
            });
        }
        const after = new Map(refs);
        for (const [name, { newOid }] of updates) {
          if (newOid === ZERO_OID) after.delete(name);
          else after.set(name, newOid);
        }
        for (const name of updates.keys()) {
          if (!after.has(name)) continue;
          for (const other of after.keys()) {
            if (other.startsWith(`${name}/`) || name.startsWith(`${other}/`)) {
              throw new GatosError('ref_dir_conflict', `cannot create ${name}: it would be both a ref and a directory of refs`, {
                ref: name,
              });
            }
          }
        }
        refs.clear();
        for (const [name, oid] of after) refs.set(name, oid);
      },
    };
    function add(name: string, newOid: Oid, expectedOld: Oid, writes: boolean): RefTransaction {
      assertRefName(name);
      if (!isOid(newOid) || !isOid(expectedOld))
        throw new GatosError('invalid_oid', `not an object id in the update of ${name}`, { ref: name });
      if (writes && newOid === ZERO_OID) throw new GatosError('invalid_oid', 'cannot point a ref at the zero oid', { ref: name });
      if (updates.has(name)) throw new GatosError('invalid_argument', `ref ${name} appears twice in one transaction`, { ref: name });
      updates.set(name, { newOid, expectedOld });
      return tx;
    }
    return tx;
  }
}
