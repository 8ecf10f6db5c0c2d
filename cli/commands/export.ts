import { blake3Ready } from '../../engine/codec/blake3.js';
import { GatosError } from '../../engine/errors.js';
import { openRepository } from '../../engine/git/repository.js';
import { clockFromEnv } from '../../engine/ledger/clock.js';
import { runExport } from '../../exporter/export.js';
import { verifyExport } from '../../exporter/verify.js';
import { type Command, type CommandContext, intFlag, requiredFlag, stringFlag } from '../command.js';

const USAGE = [
  'usage: gatos export --format sqlite --out PATH [--tables t1,t2] [--columns table:c1,c2]... [--state NS]',
  '                    [--full] [--batch-size N] [--json]',
  '       gatos export sqlite --out PATH ...',
  '       gatos export verify PATH [--repo R] [--json]     exit 0 valid, 1 invalid (reason codes), 2 unusable',
  '',
  '  Tables: commits, events, messages, state_nodes, pointers, jobs, governance_proposals,',
  '  governance_approvals, governance_grants, governance_revocations, export_info.',
  "  --state NS binds the export to the namespace's checkpoint (Explorer-Root with its Fold-Root).",
  '  An existing export at PATH is continued from the journal heads it recorded (--full: start over).',
  '  Writes PATH, PATH.explorer-root.txt and, last, PATH.manifest.json.',
].join('\n');

function list(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

function columnsFlag(ctx: CommandContext): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const spec of (ctx.values.columns as string[] | undefined) ?? []) {
    const colon = spec.indexOf(':');
    if (colon <= 0) throw new GatosError('usage', `--columns takes table:c1,c2, got ${JSON.stringify(spec)}`);
    map.set(spec.slice(0, colon), list(spec.slice(colon + 1)) ?? []);
  }
  return map;
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'Export the ledger, messages, state, jobs and governance to SQLite; verify an export',
  usage: USAGE,
  options: {
    format: { type: 'string' },
    out: { type: 'string' },
    tables: { type: 'string' },
    columns: { type: 'string', multiple: true },
    state: { type: 'string' },
    full: { type: 'boolean' },
    'batch-size': { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    await blake3Ready();
    const [sub, target] = ctx.positionals;
    if (sub === 'verify') {
      if (!target) throw new GatosError('usage', USAGE);
      const repo = ctx.values.repo !== undefined ? openRepository(ctx.repo) : undefined;
      try {
        const result = verifyExport(target, repo);
        const lines = result.failures.map((f) => `FAIL ${f.code}: ${f.detail}`);
        ctx.out.result(
          result,
          [`${result.ok ? 'valid' : 'INVALID'} ${result.manifest} (Explorer-Root ${result.explorer_root})`, ...lines].join('\n'),
        );
        return result.ok ? 0 : 1;
      } finally {
        repo?.close();
      }
    }
    const format = sub ?? stringFlag(ctx, 'format');
    if (format === 'parquet') throw new GatosError('invalid_argument', 'parquet export is not built yet; use --format sqlite');
    if (format !== 'sqlite') throw new GatosError('usage', `--format must be sqlite\n\n${USAGE}`);
    const repo = openRepository(ctx.repo);
    try {
      const batchSize = intFlag(ctx, 'batch-size');
      if (batchSize !== undefined && batchSize < 1) throw new GatosError('invalid_argument', '--batch-size must be at least 1');
      const tables = list(stringFlag(ctx, 'tables'));
      const state = stringFlag(ctx, 'state');
      const manifest = await runExport(
        { objects: repo.objects, refs: repo.refs },
        {
          format,
          out: requiredFlag(ctx, 'out', USAGE),
          columns: columnsFlag(ctx),
          full: ctx.values.full === true,
          clock: clockFromEnv(),
          onProgress: (table, rows) => ctx.out.progress(`export ${table}`, rows, rows, true),
          ...(tables ? { tables } : {}),
          ...(state !== undefined ? { stateNs: state } : {}),
          ...(batchSize !== undefined ? { batchSize } : {}),
        },
      );
      const counts = Object.entries(manifest.row_counts).map(([t, n]) => `  ${t}: ${n}`);
      ctx.out.result(manifest, [`exported to ${manifest.files[0]?.path} (Explorer-Root ${manifest.explorer_root})`, ...counts].join('\n'));
      return 0;
    } finally {
      repo.close();
    }
  },
};
