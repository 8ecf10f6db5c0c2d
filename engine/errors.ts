/**
 * Typed errors with stable codes. Errors cross worker threads, the JSONL daemon and HTTP, so
 * each one has a `code`, structured `data` and a JSON form that survives structured cloning.
 * Every code is listed in docs/errors.md.
 *
 * @example
 *   throw new GatosError('invalid_ref_name', `invalid ref name: ${name}`, { name });
 */
export type ErrorKind = 'usage' | 'input' | 'conflict' | 'corrupt' | 'failure' | 'internal';

/** How each code is classified; drives CLI exit codes (usage/input -> 2, others -> 1). */
const KINDS: Record<string, ErrorKind> = {
  usage: 'usage',
  invalid_argument: 'usage',
  invalid_ref_name: 'input',
  invalid_oid: 'input',
  invalid_ulid: 'input',
  invalid_json: 'input',
  invalid_object: 'input',
  not_a_repository: 'input',
  unsupported_repository: 'input',
  key_exists: 'input',
  key_not_found: 'input',
  unknown_actor: 'input',
  key_not_trusted: 'input',
  invalid_key: 'input',
  not_an_event: 'input',
  invalid_policy: 'input',
  policy_not_found: 'input',
  non_fast_forward: 'conflict',
  POLICY_DENY: 'failure',
  unknown_group: 'input',
  proposal_not_found: 'input',
  grant_not_found: 'input',
  proposal_expired: 'failure',
  quorum_not_met: 'failure',
  invalid_topic: 'input',
  invalid_envelope: 'input',
  ulid_not_monotonic: 'conflict',
  head_conflict: 'conflict',
  topic_not_found: 'input',
  limit_out_of_range: 'input',
  checkpoint_backwards: 'conflict',
  invalid_request: 'input',
  invalid_manifest: 'input',
  job_not_found: 'input',
  claim_conflict: 'conflict',
  lease_lost: 'conflict',
  job_finished: 'failure',
  invalid_fold_spec: 'input',
  not_a_checkpoint: 'input',
  state_not_found: 'input',
  node_not_found: 'input',
  state_conflict: 'conflict',
  corrupt_state: 'corrupt',
  bisect_not_prefix: 'input',
  bisect_inconsistent: 'failure',
  pointer_unreachable: 'failure',
  pointer_digest_mismatch: 'corrupt',
  invalid_export: 'input',
  invalid_filter: 'input',
  UNSUPPORTED_FILTER: 'input',
  unknown_method: 'input',
  object_not_found: 'failure',
  ref_not_found: 'failure',
  HEAD_CONFLICT: 'conflict',
  ref_locked: 'conflict',
  ref_dir_conflict: 'conflict',
  corrupt_object: 'corrupt',
  corrupt_pack: 'corrupt',
  corrupt_ref: 'corrupt',
  hash_mismatch: 'corrupt',
  cancelled: 'failure',
  export_locked: 'conflict',
  output_exists: 'input',
  socket_in_use: 'conflict',
  disk_full: 'failure',
  permission_denied: 'input',
  path_conflict: 'input',
  worker_failed: 'internal',
  pool_closed: 'internal',
  internal: 'internal',
};

export interface SerializedError {
  name: 'GatosError';
  code: string;
  message: string;
  data: Record<string, unknown>;
}

export class GatosError extends Error {
  override readonly name = 'GatosError';
  readonly code: string;
  readonly data: Record<string, unknown>;

  constructor(code: string, message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.data = data;
  }

  get kind(): ErrorKind {
    return KINDS[this.code] ?? 'failure';
  }

  toJSON(): SerializedError {
    return { name: 'GatosError', code: this.code, message: this.message, data: this.data };
  }

  static fromJSON(value: SerializedError): GatosError {
    return new GatosError(value.code, value.message, value.data);
  }

  static isSerialized(value: unknown): value is SerializedError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { name?: unknown }).name === 'GatosError' &&
      typeof (value as { code?: unknown }).code === 'string'
    );
  }
}

/**
 * What the machine refused, told apart from our own failures (`internal`): a full disk or quota
 * (`ENOSPC`, `EDQUOT`, SQLite's `SQLITE_FULL`) and a path that may not be written or read
 * (`EACCES`, `EPERM`, `EROFS`, SQLite's `SQLITE_READONLY`). Undefined for anything else.
 */
export function environmentError(err: unknown): GatosError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const path = (err as { path?: unknown } | null)?.path;
  const at = typeof path === 'string' ? { path } : {};
  const where = typeof path === 'string' ? ` (${path})` : '';
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL')
    return new GatosError('disk_full', `no space left on the device${where}: free some space and run again`, at, { cause: err });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'SQLITE_READONLY')
    return new GatosError(
      'permission_denied',
      typeof path !== 'string'
        ? `not allowed: ${(err as Error).message}`
        : code === 'EROFS'
          ? `${path} is on a read-only file system`
          : `not allowed to write or read ${path} (${code})`,
      at,
      { cause: err },
    );
  // A path whose parts are not what it needs: a file where a directory must be, or the reverse
  // (`mkdir -p` through a file fails with EEXIST).
  if (code === 'ENOTDIR' || code === 'EISDIR' || (code === 'EEXIST' && (err as { syscall?: unknown }).syscall === 'mkdir'))
    return new GatosError(
      'path_conflict',
      code === 'EISDIR'
        ? `${typeof path === 'string' ? path : 'a path'} is a directory, where a file is needed`
        : `a part of ${typeof path === 'string' ? path : 'a path'} is a file, where a directory is needed`,
      at,
      { cause: err },
    );
  return undefined;
}

/** Any thrown value as a GatosError: ours as they are, the machine's by `environmentError`, the rest as `internal`. */
export function asGatosError(err: unknown): GatosError {
  if (err instanceof GatosError) return err;
  return environmentError(err) ?? new GatosError('internal', (err as Error)?.message ?? String(err), {}, { cause: err });
}

/** True when `err` is a GatosError carrying `code`. */
export function hasCode(err: unknown, code: string): err is GatosError {
  return err instanceof GatosError && err.code === code;
}

/** Exit status per DESIGN.md: 2 for usage or input errors, 1 for everything else. */
export function exitCodeFor(err: unknown): 1 | 2 {
  if (err instanceof GatosError && (err.kind === 'usage' || err.kind === 'input')) return 2;
  return 1;
}
