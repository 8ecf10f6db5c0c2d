import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initRepository } from '../../engine/git/repository.js';
import type { Command } from '../command.js';

export const initCommand: Command = {
  name: 'init',
  usage: ['usage: gatos init [--repo <path>] [--bare] [--json]', '', '  --bare   create a bare repository at <path>'].join('\n'),
  options: { bare: { type: 'boolean' } },
  run(ctx) {
    const bare = ctx.values.bare === true;
    const root = resolve(ctx.repo);
    const existed = existsSync(bare ? join(root, 'HEAD') : join(root, '.git'));
    const gitDir = initRepository(root, { bare });
    ctx.out.result(
      { gitDir, created: !existed },
      existed ? `repository already exists at ${gitDir}` : `initialized empty GATOS repository in ${gitDir}`,
    );
    return 0;
  },
};
