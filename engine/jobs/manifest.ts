/**
 * Job manifests (schema `job_manifest`, closed) and the canonical job id. A manifest is authored
 * as YAML 1.2 or JSON; it is validated, `timeout` is normalized to whole seconds, `args` defaults
 * to `[]`, and the job id is the BLAKE3 content id of the canonical JSON of every field except
 * the `ulid` alias (decision 0007).
 *
 * @example
 *   const manifest = parseManifestText('command: ["/bin/echo"]\nargs: ["hello"]\ntimeout: 30\n');
 *   jobId(manifest); // 'blake3:5c4f6b75…'
 */
import { contentId } from '../codec/blake3.js';
import { canonicalBytes, parseJson } from '../codec/canonical-json.js';
import { isUlid } from '../codec/ulid.js';
import { parseYaml } from '../codec/yaml.js';
import { GatosError } from '../errors.js';

export interface BlobInput {
  kind: 'blobptr';
  algo: 'blake3';
  hash: string;
  size?: number;
}

/** A validated manifest: `timeout` in whole seconds, `args` always present. */
export interface JobManifest {
  command: string[];
  args: string[];
  timeout: number;
  env?: Record<string, string>;
  cwd?: string;
  inputs?: BlobInput[];
  policy_root?: string;
  /** Alias for humans; not part of the job id. */
  ulid?: string;
}

const FIELDS = new Set(['command', 'args', 'timeout', 'env', 'cwd', 'inputs', 'policy_root', 'ulid']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DIGEST = /^blake3:[0-9a-f]{64}$/;
const POLICY_ROOT = /^sha256:[0-9a-f]{64}$/;
// Weeks, days, hours, minutes, seconds; years and months have no fixed length (decision 0007).
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

function invalid(message: string, data: Record<string, unknown> = {}): GatosError {
  return new GatosError('invalid_manifest', message, data);
}

function stringArray(value: unknown, field: string, minItems: number): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
    throw invalid(`${field} must be an array of strings`, { field });
  if (value.length < minItems) throw invalid(`${field} needs at least ${minItems} item`, { field });
  return value as string[];
}

/** Whole seconds of an ISO-8601 duration (`PT30S`, `P1DT2H`); Y and month designators are refused. */
export function durationSeconds(text: string): number {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T'))
    throw invalid(`timeout ${JSON.stringify(text)} is not an ISO-8601 duration of weeks, days, hours, minutes and seconds (e.g. PT30S)`, {
      timeout: text,
    });
  const [, w, d, h, m, s] = match;
  const seconds = Number(w ?? 0) * 604_800 + Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0);
  if (!Number.isSafeInteger(seconds)) throw invalid(`timeout ${text} is not a whole number of seconds`, { timeout: text });
  return seconds;
}

function timeoutSeconds(value: unknown): number {
  if (typeof value === 'string') return durationSeconds(value);
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw invalid('timeout must be whole seconds or an ISO-8601 duration', { timeout: value });
  if (value < 0) throw invalid(`timeout must not be negative, got ${value}`, { timeout: value });
  return value;
}

function checkInputs(value: unknown): BlobInput[] {
  if (!Array.isArray(value)) throw invalid('inputs must be an array');
  return value.map((item, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw invalid(`inputs[${i}] must be an object`);
    const input = item as Record<string, unknown>;
    for (const key of Object.keys(input))
      if (!['kind', 'algo', 'hash', 'size'].includes(key)) throw invalid(`inputs[${i}] has unknown field ${JSON.stringify(key)}`);
    if (input.kind !== 'blobptr') throw invalid(`inputs[${i}].kind must be "blobptr"`);
    if (input.algo !== 'blake3') throw invalid(`inputs[${i}].algo must be "blake3"`);
    if (typeof input.hash !== 'string' || !DIGEST.test(input.hash)) throw invalid(`inputs[${i}].hash must be blake3:<64 lowercase hex>`);
    if (input.size !== undefined && (typeof input.size !== 'number' || !Number.isSafeInteger(input.size) || input.size < 0))
      throw invalid(`inputs[${i}].size must be a non-negative integer`);
    return input as unknown as BlobInput;
  });
}

/** Validates a manifest object and returns its normalized form; throws `invalid_manifest`. */
export function checkManifest(value: unknown): JobManifest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('a job manifest must be an object');
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!FIELDS.has(key)) throw invalid(`unknown manifest field ${JSON.stringify(key)}`, { field: key });
  if (raw.command === undefined) throw invalid('command is required', { field: 'command' });
  if (raw.timeout === undefined) throw invalid('timeout is required', { field: 'timeout' });
  const manifest: JobManifest = {
    command: stringArray(raw.command, 'command', 1),
    args: raw.args === undefined ? [] : stringArray(raw.args, 'args', 0),
    timeout: timeoutSeconds(raw.timeout),
  };
  if (raw.env !== undefined) {
    if (raw.env === null || typeof raw.env !== 'object' || Array.isArray(raw.env)) throw invalid('env must be a map of strings');
    for (const [name, item] of Object.entries(raw.env)) {
      if (!ENV_NAME.test(name)) throw invalid(`env name ${JSON.stringify(name)} must match [A-Za-z_][A-Za-z0-9_]*`, { name });
      if (typeof item !== 'string') throw invalid(`env ${name} must be a string`, { name });
    }
    manifest.env = raw.env as Record<string, string>;
  }
  if (raw.cwd !== undefined) {
    if (typeof raw.cwd !== 'string' || raw.cwd === '') throw invalid('cwd must be a non-empty string');
    manifest.cwd = raw.cwd;
  }
  if (raw.inputs !== undefined) manifest.inputs = checkInputs(raw.inputs);
  if (raw.policy_root !== undefined) {
    if (typeof raw.policy_root !== 'string' || !POLICY_ROOT.test(raw.policy_root)) throw invalid('policy_root must be sha256:<64 hex>');
    manifest.policy_root = raw.policy_root;
  }
  if (raw.ulid !== undefined) {
    if (typeof raw.ulid !== 'string' || !isUlid(raw.ulid)) throw invalid('ulid must be a ULID');
    manifest.ulid = raw.ulid;
  }
  return manifest;
}

/** Parses YAML 1.2 (JSON is a subset; stored manifests take a strict JSON fast path) and validates it. */
export function parseManifestText(text: string): JobManifest {
  let value: unknown;
  if (text.startsWith('{')) {
    try {
      return checkManifest(parseJson(text));
    } catch (err) {
      if (err instanceof GatosError && err.code === 'invalid_manifest') throw err;
      // Not strict JSON: YAML flow mappings also start with `{`.
    }
  }
  try {
    value = parseYaml(text);
  } catch (err) {
    throw invalid(`job manifest is not valid YAML: ${(err as Error).message}`);
  }
  return checkManifest(value);
}

/** The fields the job id covers: everything but the `ulid` alias. */
function hashedFields(manifest: JobManifest): Omit<JobManifest, 'ulid'> {
  const { ulid: _alias, ...rest } = manifest;
  return rest;
}

/** `blake3:<hex>` of the canonical manifest without its alias (requires `blake3Ready()`). */
export function jobId(manifest: JobManifest): string {
  return contentId(canonicalBytes(hashedFields(manifest)));
}

/** The bytes stored as `job.yaml`: canonical JSON (valid YAML 1.2), alias included. */
export function manifestFileBytes(manifest: JobManifest): Uint8Array {
  return Buffer.from(`${Buffer.from(canonicalBytes(manifest)).toString('utf8')}\n`);
}

export function isJobId(value: string): boolean {
  return DIGEST.test(value);
}
