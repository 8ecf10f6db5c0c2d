/**
 * `gatos export verify`: an export is valid when its manifest is complete and unsampled, every
 * file hashes to its recorded BLAKE3 and size, the row counts hold, and Explorer-Root recomputes
 * from the recorded fields; with a repository, the ledger, policy and state it binds to must
 * still be what the repository holds now. Each failure carries a reason code.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { blake3Hex } from '../engine/codec/blake3.js';
import { explorerRoot } from '../engine/codec/explorer-root.js';
import { GatosError } from '../engine/errors.js';
import { repoFacts } from './export.js';
import type { Source } from './extract.js';
import { readManifest } from './manifest.js';
import { parquetRowCount } from './parquet-sink.js';

export interface ExportFailure {
  code: 'incomplete' | 'sampled' | 'file_missing' | 'file_mismatch' | 'row_count_mismatch' | 'explorer_root_mismatch' | 'repo_moved';
  detail: string;
}

export interface ExportVerification {
  ok: boolean;
  manifest: string;
  explorer_root: string;
  failures: ExportFailure[];
}

/** `path` may be the export (`<out>`) or its manifest. */
export async function verifyExport(path: string, repo?: Source): Promise<ExportVerification> {
  const manifestPath = path.endsWith('.manifest.json') ? path : `${path}.manifest.json`;
  if (!existsSync(manifestPath)) throw new GatosError('invalid_export', `no export manifest at ${manifestPath}`, { path: manifestPath });
  const manifest = readManifest(manifestPath);
  const failures: ExportFailure[] = [];
  const fail = (code: ExportFailure['code'], detail: string) => failures.push({ code, detail });
  if (manifest.complete !== true) fail('incomplete', 'the manifest is not marked complete (the export was interrupted)');
  if (manifest.sampling !== undefined) fail('sampled', 'the export is sampled');
  const dir = dirname(manifestPath);
  let filesOk = true;
  for (const file of manifest.files) {
    const full = join(dir, file.path);
    if (!existsSync(full)) {
      fail('file_missing', `${file.path} is missing`);
      filesOk = false;
      continue;
    }
    const digest = `blake3:${blake3Hex(readFileSync(full))}`;
    if (digest !== file.blake3 || statSync(full).size !== file.size) {
      fail('file_mismatch', `${file.path} changed: hashes to ${digest}, the manifest says ${file.blake3}`);
      filesOk = false;
    }
  }
  const data = manifest.files[0] ? join(dir, manifest.files[0].path) : undefined;
  if (filesOk && manifest.format === 'parquet') {
    const counted: Record<string, number> = {};
    for (const file of manifest.files) {
      if (!file.path.endsWith('.parquet')) continue;
      const table = file.path.split('/')[1] as string;
      counted[table] = (counted[table] ?? 0) + (await parquetRowCount(readFileSync(join(dir, file.path))));
    }
    for (const [table, expected] of Object.entries(manifest.row_counts))
      if ((counted[table] ?? 0) !== expected)
        fail('row_count_mismatch', `${table} has ${counted[table] ?? 0} rows, the manifest says ${expected}`);
  }
  if (filesOk && data && manifest.format === 'sqlite') {
    const db = new Database(data, { readonly: true, fileMustExist: true });
    try {
      for (const [table, expected] of Object.entries(manifest.row_counts)) {
        const actual = (db.prepare(`SELECT count(*) AS n FROM "${table.replace(/"/g, '')}"`).get() as { n: number }).n;
        if (actual !== expected) fail('row_count_mismatch', `${table} has ${actual} rows, the manifest says ${expected}`);
      }
    } finally {
      db.close();
    }
  }
  const root = explorerRoot({
    ledgerHead: manifest.ledger_head,
    policyRoot: manifest.policy_root,
    ...(manifest.fold_root ? { foldRoot: manifest.fold_root } : {}),
    extractorVersion: manifest.extractor_version,
  });
  if (root !== manifest.explorer_root)
    fail('explorer_root_mismatch', `the recorded fields give ${root}, the manifest says ${manifest.explorer_root}`);
  if (repo) {
    const ns =
      typeof (manifest.filters as { state?: unknown })?.state === 'string'
        ? ((manifest.filters as { state: string }).state as string)
        : undefined;
    const facts = repoFacts(repo, ns);
    if (facts.ledgerHead !== manifest.ledger_head) fail('repo_moved', 'the ledger has moved on since the export (journal heads differ)');
    if (facts.policyRoot !== manifest.policy_root) fail('repo_moved', 'the active policy changed since the export');
    if ((facts.stateRoot ?? undefined) !== manifest.state_root) fail('repo_moved', 'the state checkpoint changed since the export');
  }
  return { ok: failures.length === 0, manifest: manifestPath, explorer_root: root, failures };
}
