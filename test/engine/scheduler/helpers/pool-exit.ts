// Child process for the shutdown test: start a pool, give it tasks at once (some arrive while
// its threads still load the task code), close it, and let the process end.
import { ComputePool } from '../../../../engine/scheduler/pool.js';

const pool = new ComputePool({ threads: 2 });
await Promise.all(Array.from({ length: 4 }, (_, i) => pool.run({ kind: 'canonicalize', documents: [`{"b":2,"a":${i}}`] })));
await pool.close();
process.stdout.write('closed\n');
