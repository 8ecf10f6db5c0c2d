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

/** True when `err` is a GatosError carrying `code`. */
export function hasCode(err: unknown, code: string): err is GatosError {
  return err instanceof GatosError && err.code === code;
}

/** Exit status per DESIGN.md: 2 for usage or input errors, 1 for everything else. */
export function exitCodeFor(err: unknown): 1 | 2 {
  if (err instanceof GatosError && (err.kind === 'usage' || err.kind === 'input')) return 2;
  return 1;
}
