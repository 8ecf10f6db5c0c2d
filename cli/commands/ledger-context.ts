/** Opens the repository and the ledger pieces a command needs (keys, clock) from flags and env. */
import { openRepository, type Repository } from '../../engine/git/repository.js';
import { clockFromEnv } from '../../engine/ledger/clock.js';
import type { Ledger } from '../../engine/ledger/journal.js';
import { keyDirectory } from '../../engine/ledger/keys.js';

export function openLedger(path: string): { repo: Repository; ledger: Ledger } {
  const repo = openRepository(path);
  return { repo, ledger: { objects: repo.objects, refs: repo.refs, keyDir: keyDirectory(repo.gitDir), clock: clockFromEnv() } };
}
