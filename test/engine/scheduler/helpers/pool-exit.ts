// Child process for the shutdown test: run a task, close the pool, and let the process end.
import { ComputePool } from '../../../../engine/scheduler/pool.js';

const pool = new ComputePool({ threads: 2 });
await pool.run({ kind: 'canonicalize', documents: ['{"b":2,"a":1}'] });
await pool.close();
process.stdout.write('closed\n');
