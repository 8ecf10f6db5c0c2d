// Child process for the ref race tests.
//   create <gitDir> <ref> <oid>          try to create <ref> expecting it absent; prints "won" or the error code
//   increment <gitDir> <ref> <count>     <count> read-modify-write appends to a commit chain, retrying conflicts
import { GatosError } from '../../../../engine/errors.js';
import { FileObjectStore } from '../../../../engine/git/file-object-store.js';
import { FileRefStore } from '../../../../engine/git/file-ref-store.js';
import { serializeCommit } from '../../../../engine/git/object-codec.js';

const [mode, gitDir, ref, arg] = process.argv.slice(2) as [string, string, string, string];
const refs = new FileRefStore(gitDir);

if (mode === 'create') {
  try {
    refs.transaction().create(ref, arg).commit();
    process.stdout.write('won\n');
  } catch (err) {
    process.stdout.write(`${err instanceof GatosError ? err.code : String(err)}\n`);
  }
} else {
  const objects = new FileObjectStore(gitDir);
  const tree = objects.write('tree', new Uint8Array(0));
  const who = { name: 'racer', email: 'r@e', timestamp: 1700000000, timezone: '+0000' };
  let done = 0;
  let retries = 0;
  while (done < Number(arg)) {
    const old = refs.resolve(ref) as string;
    const next = objects.write(
      'commit',
      serializeCommit({ tree, parents: [old], author: who, committer: who, message: `ours ${process.pid} ${done}\n` }),
    );
    try {
      refs.transaction().update(ref, next, old).commit();
      done++;
    } catch (err) {
      if (!(err instanceof GatosError) || (err.code !== 'HEAD_CONFLICT' && err.code !== 'ref_locked')) throw err;
      retries++;
    }
  }
  process.stdout.write(`${done} ${retries}\n`);
}
