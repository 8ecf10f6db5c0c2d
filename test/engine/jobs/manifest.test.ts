import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { GatosError } from '../../../engine/errors.js';
import { checkManifest, durationSeconds, jobId, manifestFileBytes, parseManifestText } from '../../../engine/jobs/manifest.js';
import { referenceJson as readJson, referenceSchema } from '../../helpers/schemas.js';

const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;

before(() => blake3Ready());

describe('job ids (ADR-0002 worked examples)', () => {
  test('the ADR example and manifest_min hash to the spec digests', () => {
    const adr = parseManifestText(
      'command: ["/usr/bin/env", "bash", "-lc"]\nargs: ["echo", "hello"]\ntimeout: 30\nenv: { GREETING: "hello" }\n',
    );
    assert.equal(jobId(adr), 'blake3:298aaf4ca1e68cb951a3fae38e69dba73ce6a24d138f773601ff7d264e0d5fdc');
    const min = checkManifest(readJson('examples/v1/job/manifest_min.json'));
    assert.equal(jobId(min), 'blake3:5c4f6b750d6930ffc8491f59dc7cffd5201b680755db0e9acff17d313df031d1');
  });

  test('key order, ISO-8601 timeouts and the ulid alias do not change the id; a missing args hashes as []', () => {
    const a = parseManifestText('{"timeout": "PT30S", "args": ["hello"], "command": ["/bin/echo"], "ulid": "01KB0000000000000000000000"}');
    assert.equal(a.timeout, 30);
    assert.equal(jobId(a), 'blake3:5c4f6b750d6930ffc8491f59dc7cffd5201b680755db0e9acff17d313df031d1');
    // Without args the manifest is hashed with "args": [] (decision 0007): the spec's computed 237e59ea….
    assert.match(jobId(checkManifest({ command: ['/bin/echo'], timeout: 30 })), /^blake3:237e59ea/);
  });

  test('job.yaml is canonical JSON that parses back to the same manifest and meets the reference schema', () => {
    const validate = referenceSchema('job/job_manifest.schema.json');
    const manifest = checkManifest({
      command: ['/bin/sh', '-c'],
      args: ['exit 0'],
      timeout: 'P1DT2H3M4S',
      env: { A_1: 'x' },
      cwd: 'sub',
      inputs: [{ kind: 'blobptr', algo: 'blake3', hash: `blake3:${'a'.repeat(64)}`, size: 3 }],
      policy_root: `sha256:${'b'.repeat(64)}`,
      ulid: '01KB0000000000000000000000',
    });
    assert.equal(manifest.timeout, 86_400 + 7200 + 180 + 4);
    const text = Buffer.from(manifestFileBytes(manifest)).toString('utf8');
    assert.deepEqual(parseManifestText(text), manifest);
    assert.ok(validate(JSON.parse(text)), JSON.stringify(validate.errors));
  });
});

describe('bad manifests are typed errors', () => {
  const cases: Array<[string, unknown]> = [
    ['missing command', { timeout: 1 }],
    ['empty command', { command: [], timeout: 1 }],
    ['non-string command', { command: [1], timeout: 1 }],
    ['missing timeout', { command: ['x'] }],
    ['negative timeout', { command: ['x'], timeout: -1 }],
    ['float timeout', { command: ['x'], timeout: 1.5 }],
    ['bad ISO-8601', { command: ['x'], timeout: '30 seconds' }],
    ['ISO-8601 years', { command: ['x'], timeout: 'P1Y' }],
    ['ISO-8601 months', { command: ['x'], timeout: 'P2M' }],
    ['fractional total', { command: ['x'], timeout: 'PT1.5S' }],
    ['empty duration', { command: ['x'], timeout: 'PT' }],
    ['bad env name', { command: ['x'], timeout: 1, env: { '1BAD': 'x' } }],
    ['env value not a string', { command: ['x'], timeout: 1, env: { A: 1 } }],
    ['empty cwd', { command: ['x'], timeout: 1, cwd: '' }],
    ['bare input hash', { command: ['x'], timeout: 1, inputs: [{ kind: 'blobptr', algo: 'blake3', hash: 'a'.repeat(64) }] }],
    ['bad policy root', { command: ['x'], timeout: 1, policy_root: 'sha256:zz' }],
    ['unknown field', { command: ['x'], timeout: 1, retries: 3 }],
    ['lowercase ulid', { command: ['x'], timeout: 1, ulid: '01kb0000000000000000000000' }],
    ['not an object', ['x']],
  ];
  for (const [name, value] of cases) {
    test(name, () => assert.throws(() => checkManifest(value), isCode('invalid_manifest')));
  }

  test('YAML syntax errors, duplicate keys and YAML-only floats are refused', () => {
    assert.throws(() => parseManifestText('command: [x\ntimeout: 1'), isCode('invalid_manifest'));
    assert.throws(() => parseManifestText('command: [x]\ncommand: [y]\ntimeout: 1'), isCode('invalid_manifest'));
    assert.throws(() => parseManifestText('command: [x]\ntimeout: .inf'), isCode('invalid_manifest'));
  });

  test('durations: weeks, days, hours, minutes and whole seconds', () => {
    assert.equal(durationSeconds('PT0S'), 0);
    assert.equal(durationSeconds('P1W'), 604_800);
    assert.equal(durationSeconds('PT1M30S'), 90);
    assert.equal(durationSeconds('PT2.0S'), 2);
  });
});
