/**
 * The export manifest `<out>.manifest.json` (schema `export_manifest`, extended): what was
 * exported, from which ledger and policy, with which filters, the BLAKE3 and size of every file,
 * row counts, Explorer-Root, and `complete` (written last).
 */
import { readFileSync } from 'node:fs';
import { parseJson } from '../engine/codec/canonical-json.js';
import { GatosError } from '../engine/errors.js';

export interface ExportManifest {
  format: 'sqlite' | 'parquet';
  state_ref: string;
  commit_range: { start: string; end: string };
  tables: { commits: boolean; events: boolean; state_nodes: boolean; pointers: boolean; jobs: boolean; governance: boolean };
  created_at: string;
  extractor_version: string;
  ledger_head: string;
  ledger_heads: Record<string, string>;
  /** The exported topics' message segments (ref -> tip), so that a continued export reads only what changed. */
  message_segments?: Record<string, string>;
  policy_root: string;
  state_root?: string;
  fold_root?: string;
  explorer_root: string;
  filters: unknown;
  filters_digest: string;
  exported_tables: string[];
  row_counts: Record<string, number>;
  files: Array<{ path: string; blake3: string; size: number }>;
  incremental: boolean;
  /** Why an export already at the path was not continued (other filters, a journal rewound since). */
  restarted_because?: string;
  sampling?: unknown;
  complete: boolean;
}

const REQUIRED: Array<keyof ExportManifest> = [
  'format',
  'state_ref',
  'commit_range',
  'tables',
  'extractor_version',
  'ledger_head',
  'policy_root',
  'explorer_root',
  'row_counts',
  'files',
  'complete',
];

/** Reads and shape-checks a manifest; `invalid_manifest_file` when it is not one. */
export function readManifest(path: string): ExportManifest {
  let value: unknown;
  try {
    value = parseJson(readFileSync(path, 'utf8').trimEnd());
  } catch (err) {
    throw new GatosError('invalid_export', `cannot read the export manifest ${path}: ${(err as Error).message}`, { path });
  }
  const manifest = value as Partial<ExportManifest>;
  const missing = REQUIRED.filter((key) => manifest[key] === undefined);
  if (missing.length > 0) throw new GatosError('invalid_export', `${path} lacks ${missing.join(', ')}`, { path, missing });
  if (manifest.format !== 'sqlite' && manifest.format !== 'parquet')
    throw new GatosError('invalid_export', `${path}: unknown format ${manifest.format}`);
  return manifest as ExportManifest;
}
