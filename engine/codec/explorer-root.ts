/**
 * Explorer-Root (SPEC §15.1): BLAKE3 over length-prefixed fields — `ledger_head`,
 * `policy_root`, `fold_root` (derived exports only; the raw-ledger variant omits it entirely)
 * and `extractor_version` — each as a 4-byte big-endian length followed by the bytes. Digest
 * fields are lowercase hex, hex-decoded (a `sha256:`/`blake3:` prefix is stripped); the version
 * is UTF-8.
 *
 * @example
 *   explorerRoot({ ledgerHead: '11'.repeat(20), policyRoot: '22'.repeat(20), extractorVersion: 'v1' });
 */
import { GatosError } from '../errors.js';
import { blake3Hex } from './blake3.js';

export interface ExplorerRootFields {
  ledgerHead: string;
  policyRoot: string;
  /** Present for derived (state) exports, absent for raw-ledger exports. */
  foldRoot?: string;
  extractorVersion: string;
}

function digestBytes(value: string, field: string): Buffer {
  const hex = value.replace(/^(sha256|blake3):/, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) {
    throw new GatosError('invalid_argument', `${field} must be lowercase hex of whole bytes, got ${JSON.stringify(value)}`, {
      field,
      value,
    });
  }
  return Buffer.from(hex, 'hex');
}

function lengthPrefixed(bytes: Uint8Array): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(bytes.length);
  return Buffer.concat([prefix, bytes]);
}

export function explorerRootBytes(fields: ExplorerRootFields): Uint8Array {
  const parts = [digestBytes(fields.ledgerHead, 'ledger_head'), digestBytes(fields.policyRoot, 'policy_root')];
  if (fields.foldRoot !== undefined) parts.push(digestBytes(fields.foldRoot, 'fold_root'));
  parts.push(Buffer.from(fields.extractorVersion, 'utf8'));
  return Buffer.concat(parts.map(lengthPrefixed));
}

/** The Explorer-Root as lowercase hex (requires `blake3Ready()`). */
export function explorerRoot(fields: ExplorerRootFields): string {
  return blake3Hex(explorerRootBytes(fields));
}
