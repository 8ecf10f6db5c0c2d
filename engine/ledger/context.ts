/**
 * What the ledger operations need: the two storage ports, where private keys live, and the
 * clock (the only way time enters).
 */
import type { ObjectStore, RefStore } from '../git/ports.js';
import type { Clock } from './clock.js';

export interface Ledger {
  objects: ObjectStore;
  refs: RefStore;
  keyDir: string;
  clock: Clock;
}
