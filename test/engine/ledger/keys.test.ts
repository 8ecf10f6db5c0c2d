import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { hasCode } from '../../../engine/errors.js';
import { createKey, keyFromSeed, loadPrivateKey, publicKeyId, signBytes, verifyBytes } from '../../../engine/ledger/keys.js';
import { scratch } from '../../helpers/git.js';

const { dir: newDir } = scratch();
const hex = (text: string) => Buffer.from(text, 'hex');

describe('actor keys', () => {
  test('RFC 8032 test vector 1: the seed gives its public key, and the signature of the empty message', () => {
    const key = keyFromSeed(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    const publicKey = 'ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
    assert.equal(publicKeyId(key), publicKey);
    const signature = signBytes(key, new Uint8Array(0));
    assert.equal(
      Buffer.from(signature).toString('hex'),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    assert.equal(verifyBytes(publicKey, new Uint8Array(0), signature), true);
    assert.equal(verifyBytes(publicKey, new Uint8Array([0]), signature), false);
  });

  test('a created key is stored 0600, loads back and verifies; a second one for the actor is refused', () => {
    const dir = join(newDir(), 'keys');
    const created = createKey(dir, 'user:alice');
    assert.equal(statSync(created.path).mode & 0o777, 0o600);
    assert.match(readFileSync(created.path, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const loaded = loadPrivateKey(dir, 'user:alice');
    assert.equal(publicKeyId(loaded), created.publicKey);
    const bytes = new TextEncoder().encode('hello');
    assert.equal(verifyBytes(created.publicKey, bytes, signBytes(loaded, bytes)), true);
    assert.throws(
      () => createKey(dir, 'user:alice'),
      (err) => hasCode(err, 'key_exists'),
    );
  });

  test('a key that is not Ed25519, or a seed of the wrong length, is invalid_key', () => {
    // A P-256 key made with openssl (keys generated in-process are what the keys module avoids).
    const p256 = createPrivateKey(
      [
        '-----BEGIN PRIVATE KEY-----',
        'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnz1UAO9dixfzkcj3',
        '8xqOUfHP99G65Mt8UJ16X6GPHK2hRANCAAQYSu6aqq4bDMdV7/aKxg70F/p0qR+4',
        'cRRAiwZlT7KT0kNNvNY5EzxQjTcmtkA/isqZU+QzZrOI7h1/NqmF8E44',
        '-----END PRIVATE KEY-----',
      ].join('\n'),
    );
    assert.throws(
      () => publicKeyId(p256),
      (err) => hasCode(err, 'invalid_key'),
    );
    assert.throws(
      () => keyFromSeed(new Uint8Array(31)),
      (err) => hasCode(err, 'invalid_key'),
    );
  });
});
