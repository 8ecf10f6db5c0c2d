// Child process for the publish race: <count> one-message publishes on one topic.
import { blake3Ready } from '../../../../engine/codec/blake3.js';
import { openRepository } from '../../../../engine/git/repository.js';
import { publish } from '../../../../engine/messages/publish.js';

const [gitDir, topic, count, tag] = process.argv.slice(2) as [string, string, string, string];
await blake3Ready();
const repo = openRepository(gitDir);
const bus = { objects: repo.objects, refs: repo.refs, clock: () => Date.now() };
for (let i = 0; i < Number(count); i++) {
  await publish(bus, topic, [{ ns: 'race', type: 'tick', payload: { tag, i } }], { attempts: 100, maxMessages: 7 });
}
process.stdout.write('done\n');
