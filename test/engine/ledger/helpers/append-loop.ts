// Child process for the journal race test: append <count> events one by one to one journal.
import { blake3Ready } from '../../../../engine/codec/blake3.js';
import { openRepository } from '../../../../engine/git/repository.js';
import { systemClock } from '../../../../engine/ledger/clock.js';
import { appendEvents } from '../../../../engine/ledger/journal.js';

const [gitDir, keyDir, actor, count] = process.argv.slice(2) as [string, string, string, string];
await blake3Ready();
const repo = openRepository(gitDir);
const ledger = { objects: repo.objects, refs: repo.refs, keyDir, clock: systemClock };
for (let i = 0; i < Number(count); i++) {
  await appendEvents(ledger, [{ ns: 'race', type: 'tick', actor, payload: { pid: process.pid, i } }], { attempts: 50 });
}
process.stdout.write('done\n');
