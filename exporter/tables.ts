/**
 * The export tables (decision 0009): one definition per table drives the SQLite DDL, the Parquet
 * schema, column selection and row order. `json` columns hold RFC 8785 canonical JSON text;
 * times are unix seconds; every table has `created_ts`/`updated_ts` taken from the source
 * commits, never from the clock, so the same repository exports the same bytes.
 */
import { canonicalize } from '../engine/codec/canonical-json.js';
import { GatosError } from '../engine/errors.js';

/** A `json` column's value: canonical JSON text, `null` for a missing value. */
export const jsonCell = (value: unknown): string => canonicalize(value ?? null);

export type ColumnType = 'text' | 'integer' | 'json' | 'timestamp';

export interface Column {
  name: string;
  type: ColumnType;
  nullable?: boolean;
}

export interface TableDef {
  name: string;
  columns: Column[];
  /** Columns that stay whatever `--columns` says (the key and the join keys). */
  keys: string[];
  indexes?: string[][];
  /** Hive partition column for Parquet (`day` is derived from `ts`). */
  partition?: 'day' | 'state_ref';
}

const c = (name: string, type: ColumnType, nullable = false): Column => (nullable ? { name, type, nullable } : { name, type });
const stamps = [c('created_ts', 'timestamp'), c('updated_ts', 'timestamp')];
const governance = (name: string): TableDef => ({
  name,
  columns: [c('id', 'text'), c('proposal_id', 'text'), c('payload', 'json'), c('commit_id', 'text'), c('ts', 'timestamp'), ...stamps],
  keys: ['id', 'proposal_id', 'commit_id'],
  indexes: [['proposal_id']],
});

export const TABLES: readonly TableDef[] = [
  {
    name: 'commits',
    columns: [
      c('id', 'text'),
      c('parent_id', 'text', true),
      c('ref', 'text'),
      c('author', 'text'),
      c('ts', 'timestamp'),
      c('message', 'text'),
      c('trailers', 'json'),
      c('shape_root', 'text', true),
      ...stamps,
    ],
    keys: ['id', 'parent_id', 'ref'],
    indexes: [['ref'], ['ts']],
  },
  {
    name: 'events',
    columns: [
      c('id', 'text'),
      c('event_cid', 'text'),
      c('ns', 'text'),
      c('kind', 'text'),
      c('actor', 'text'),
      c('ulid', 'text'),
      c('ts', 'timestamp'),
      c('payload', 'json'),
      c('commit_id', 'text'),
      ...stamps,
    ],
    keys: ['id', 'commit_id'],
    indexes: [['commit_id'], ['ns', 'kind'], ['actor']],
    partition: 'day',
  },
  {
    name: 'messages',
    columns: [
      c('id', 'text'),
      c('content_id', 'text'),
      c('topic', 'text'),
      c('ulid', 'text'),
      c('ns', 'text'),
      c('kind', 'text'),
      c('ts', 'timestamp'),
      c('payload', 'json'),
      c('commit_id', 'text'),
      ...stamps,
    ],
    keys: ['id', 'commit_id'],
    indexes: [['topic', 'ulid']],
    partition: 'day',
  },
  {
    name: 'state_nodes',
    columns: [
      c('id', 'text'),
      c('state_ref', 'text'),
      c('ns', 'text'),
      c('path', 'text'),
      c('digest', 'text'),
      c('shape', 'json'),
      c('private', 'integer'),
      ...stamps,
    ],
    keys: ['id', 'state_ref'],
    indexes: [['state_ref', 'path']],
    partition: 'state_ref',
  },
  {
    name: 'pointers',
    columns: [
      c('digest', 'text'),
      c('location', 'text'),
      c('capability', 'text'),
      c('size', 'integer'),
      c('state_ref', 'text'),
      c('path', 'text'),
      ...stamps,
    ],
    keys: ['digest', 'state_ref'],
    indexes: [['state_ref']],
  },
  {
    name: 'jobs',
    columns: [
      c('id', 'text'),
      c('status', 'text'),
      c('attempt', 'integer'),
      c('worker', 'text', true),
      c('exit_code', 'integer', true),
      c('started_at', 'timestamp', true),
      c('finished_at', 'timestamp', true),
      c('proof_digest', 'text', true),
      c('job_commit', 'text'),
      c('result_commit', 'text', true),
      c('manifest', 'json'),
      ...stamps,
    ],
    keys: ['id', 'job_commit'],
    indexes: [['status']],
  },
  governance('governance_proposals'),
  governance('governance_approvals'),
  governance('governance_grants'),
  governance('governance_revocations'),
  {
    name: 'export_info',
    columns: [
      c('state_ref', 'text'),
      c('commit_start', 'text'),
      c('commit_end', 'text'),
      c('shape_root', 'text', true),
      c('ledger_head', 'text'),
      c('policy_root', 'text'),
      c('explorer_root', 'text'),
      c('extractor_version', 'text'),
      c('filters', 'json'),
      ...stamps,
    ],
    keys: ['state_ref'],
  },
];

export const TABLE_NAMES = TABLES.map((t) => t.name);

export function tableDef(name: string): TableDef {
  const def = TABLES.find((t) => t.name === name);
  if (!def)
    throw new GatosError('invalid_argument', `unknown table ${JSON.stringify(name)}; tables: ${TABLE_NAMES.join(', ')}`, { table: name });
  return def;
}

/** The table with only the chosen columns (keys always kept, definition order preserved). */
export function selectColumns(def: TableDef, wanted: readonly string[] | undefined): TableDef {
  if (!wanted) return def;
  for (const name of wanted)
    if (!def.columns.some((col) => col.name === name))
      throw new GatosError('invalid_argument', `table ${def.name} has no column ${JSON.stringify(name)}`, {
        table: def.name,
        column: name,
      });
  return { ...def, columns: def.columns.filter((col) => def.keys.includes(col.name) || wanted.includes(col.name)) };
}

/** The tables workers fill (each in a staging shard of its own): the large ones. */
export const SHARD_TABLES: readonly string[] = ['commits', 'events', 'messages'];

/** A row: column name -> value (strings, integers, null; json columns already canonical text). */
export type Row = Record<string, string | number | null>;
