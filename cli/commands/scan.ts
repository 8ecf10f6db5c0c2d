import { GatosError } from '../../engine/errors.js';
import { openRepository } from '../../engine/git/repository.js';
import { scanRefs } from '../../engine/scan/scan-refs.js';
import { ComputePool, parseThreads } from '../../engine/scheduler/pool.js';
import { type Command, intFlag } from '../command.js';

export const scanCommand: Command = {
  name: 'scan',
  usage: [
    'usage: gatos scan --ref <prefix> [--repo <path>] [--threads <n>] [--batch-size <n>] [--json]',
    '',
    '  --ref <prefix>      ref prefix to scan, e.g. refs/gatos/journal/ (required)',
    '  --batch-size <n>    commits per worker task (default 2000)',
    '',
    'Each commit is decoded with its envelope, as an export would. --json prints {"refs":N,"commits":N}.',
  ].join('\n'),
  options: { ref: { type: 'string' }, 'batch-size': { type: 'string' } },
  async run(ctx) {
    const prefix = ctx.values.ref;
    if (typeof prefix !== 'string' || !prefix.startsWith('refs/'))
      throw new GatosError('usage', '--ref <prefix> is required and must start with refs/');
    const batchSize = intFlag(ctx, 'batch-size', 1) ?? 2000;
    const threads = parseThreads(ctx.values.threads as string | undefined);
    const repo = openRepository(ctx.repo);
    const refs = repo.refs.list(prefix);
    const pool = new ComputePool({ threads });
    let commits = 0;
    const started = performance.now();
    try {
      for await (const batch of scanRefs(pool, repo.gitDir, refs, { batchSize })) {
        commits += batch.count;
        ctx.out.progress('commits scanned', commits, commits);
      }
    } finally {
      await pool.close();
      repo.close();
    }
    const seconds = (performance.now() - started) / 1000;
    ctx.out.progress('commits scanned', commits, commits, true);
    ctx.out.result(
      { refs: refs.length, commits },
      `${refs.length} refs, ${commits} commits under ${prefix} (${seconds.toFixed(2)} s, ${threads} threads)`,
    );
    return 0;
  },
};
