// Interop tests: the dynaseal CLI against the `jose` npm library (pinned in package.json).
//
//   DYNASEAL_BIN=/path/to/dynaseal node --test jose_interop.test.mjs
//
// Needs `npm ci` in this folder first (scripts/install-interop-deps). Missing prerequisites make
// the run fail loudly; nothing is ever skipped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BIN, requirePackage } from './prerequisites.mjs';


// ---------------------------------------------------------------------------------------------
// Prerequisites

const jose = await requirePackage('jose');

// ---------------------------------------------------------------------------------------------
// Helpers

const ISS = 'acme';
const AUD = 'llm-1';

/** Runs dynaseal synchronously; returns { status, stdout, stderr }. */
function run(args, { input } = {}) {
  const r = spawnSync(BIN, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs dynaseal and asserts success; returns trimmed stdout. */
function runOk(args, opts) {
  const r = run(args, opts);
  assert.equal(r.status, 0, `dynaseal ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return r.stdout.trim();
}

/** Runs dynaseal, asserts exit 1 with `error: <code>: ...` as the first stderr line. */
function runFails(args, code, opts) {
  const r = run(args, opts);
  const first = r.stderr.split('\n')[0];
  assert.equal(r.status, 1,
               `expected exit 1 (${code}), got ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(first, new RegExp(`^error: ${code}: `), `unexpected stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing may be printed on stdout on failure');
  return first;
}

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynaseal-interop-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a JSON key file with mode 0600 (what dynaseal demands of private keys). */
function writeKey(dir, name, jwk) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** A jose Ed25519 key pair with its public JWK, private JWK and RFC 7638 thumbprint. */
async function joseKeyPair() {
  const { publicKey, privateKey } =
      await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const publicJwk = await jose.exportJWK(publicKey);
  const privateJwk = await jose.exportJWK(privateKey);
  const kid = await jose.calculateJwkThumbprint(publicJwk, 'sha256');
  return { publicKey, privateKey, publicJwk, privateJwk, kid };
}

const now = () => Math.floor(Date.now() / 1000);
const randomJti = () => randomBytes(16).toString('base64url'); // 22 chars of [A-Za-z0-9_-]

/** A claims set as dynaseal expects it; `over` replaces top-level members. */
function claims(over = {}) {
  const iat = now();
  return {
    iss: ISS,
    aud: AUD,
    sub: 'user-42',
    jti: randomJti(),
    iat,
    exp: iat + 300,
    dks: { models: ['gpt-4o-mini', 'llama-3-8b'], max_tokens: 512, budget: 4096 },
    ctx: 'interop',
    ...over,
  };
}

/** Signs `payload` with jose under the protected header (alg EdDSA, typ dk+jwt by default). */
function joseSign(payload, key, header) {
  return new jose.SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', typ: 'dk+jwt', ...header })
      .sign(key);
}

/** dynaseal's normalization of a claims set: dks.uses defaults to 1, dks.stream to true. */
function normalized(c) {
  return { ...c, dks: { uses: 1, stream: true, ...c.dks } };
}

function verifyArgs(jwksFile, token, { iss = ISS, aud = AUD } = {}) {
  return ['key', 'verify', '--jwks', jwksFile, '--iss', iss, '--aud', aud, token];
}

/** A registered jose key pair written as a public JWK file. */
async function registeredKey(dir) {
  const kp = await joseKeyPair();
  kp.jwkFile = writeKey(dir, 'issuer.pub.jwk', kp.publicJwk);
  return kp;
}

// ---------------------------------------------------------------------------------------------
// a. dynaseal mints, jose verifies

test('dynaseal keygen + key mint -> jose jwtVerify', async (t) => {
  const dir = tempDir(t);
  const keyFile = path.join(dir, 'issuer.jwk');
  const publicJwk = JSON.parse(runOk(['keygen', '--out', keyFile]));
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'keygen must write a 0600 file');
  assert.equal(publicJwk.d, undefined, 'keygen must not print the private part');
  assert.equal(publicJwk.kty, 'OKP');
  assert.equal(publicJwk.crv, 'Ed25519');
  const thumbprint = await jose.calculateJwkThumbprint(publicJwk, 'sha256');
  assert.equal(publicJwk.kid, thumbprint);

  const ttl = 900;
  const token = runOk(['key', 'mint', '--key', keyFile, '--iss', ISS, '--aud', AUD,
                       '--sub', 'user-7', '--model', 'gpt-4o-mini', '--model', 'llama-3-8b',
                       '--max-tokens', '256', '--uses', '3', '--budget', '2048',
                       '--ttl', String(ttl), '--ctx', 'team=blue']);
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

  const key = await jose.importJWK(publicJwk, 'EdDSA');
  const { payload, protectedHeader } = await jose.jwtVerify(token, key, {
    issuer: ISS, audience: AUD, typ: 'dk+jwt', algorithms: ['EdDSA', 'Ed25519'],
  });
  assert.deepEqual(protectedHeader, { alg: 'EdDSA', kid: thumbprint, typ: 'dk+jwt' });
  assert.equal(payload.iss, ISS);
  assert.equal(payload.aud, AUD);
  assert.equal(payload.sub, 'user-7');
  assert.match(payload.jti, /^[A-Za-z0-9_-]{16,128}$/);
  assert.equal(payload.exp - payload.iat, ttl);
  assert.ok(Math.abs(payload.iat - now()) <= 5, `iat ${payload.iat} is not now`);
  assert.deepEqual(payload.dks.models, ['gpt-4o-mini', 'llama-3-8b']);
  assert.equal(payload.dks.max_tokens, 256);
  assert.equal(payload.dks.uses, 3);
  assert.equal(payload.dks.budget, 2048);
  assert.equal(payload.ctx, 'team=blue');

  // And the token round-trips through dynaseal's own verifier with the keygen output.
  const pubFile = writeKey(dir, 'issuer.pub.jwk', publicJwk);
  assert.deepEqual(JSON.parse(runOk(verifyArgs(pubFile, token))), payload);
});

// ---------------------------------------------------------------------------------------------
// b. jose signs, dynaseal verifies

test('jose SignJWT (EdDSA) -> dynaseal key verify with a public JWK file', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const c = claims();
  const token = await joseSign(c, kp.privateKey, { kid: kp.kid });
  const out = JSON.parse(runOk(verifyArgs(kp.jwkFile, token)));
  assert.deepEqual(out, normalized(c));
});

test('jose SignJWT -> dynaseal key verify with a JWKS file {"keys":[...]}', async (t) => {
  const dir = tempDir(t);
  const kp = await joseKeyPair();
  const other = await joseKeyPair();
  const jwksFile = writeKey(dir, 'issuer.jwks',
                            { keys: [{ ...other.publicJwk, kid: other.kid },
                                     { ...kp.publicJwk, kid: kp.kid, use: 'sig', alg: 'EdDSA' }] });
  const c = claims({ aud: ['llm-0', AUD], dks: { models: ['m'], max_tokens: 1, uses: 2,
                                                 stream: false, endpoints: ['chat.completions'] } });
  const token = await joseSign(c, kp.privateKey, { kid: kp.kid });
  const out = JSON.parse(runOk(verifyArgs(jwksFile, token)));
  assert.deepEqual(out, normalized(c));
});

test('jose SignJWT -> dynaseal key verify reading the token from stdin (-)', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const c = claims({ nbf: now() - 10 });
  const token = await joseSign(c, kp.privateKey, { kid: kp.kid });
  const out = JSON.parse(runOk(verifyArgs(kp.jwkFile, '-'), { input: `${token}\n` }));
  assert.deepEqual(out, normalized(c));
});

test('jose SignJWT with alg Ed25519 -> dynaseal key verify', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const c = claims();
  const token = await joseSign(c, kp.privateKey, { alg: 'Ed25519', kid: kp.kid });
  assert.equal(jose.decodeProtectedHeader(token).alg, 'Ed25519');
  const out = JSON.parse(runOk(verifyArgs(kp.jwkFile, token)));
  assert.deepEqual(out, normalized(c));
});

// ---------------------------------------------------------------------------------------------
// c. jose private key used by dynaseal

test('jose private JWK (0600 file) -> dynaseal key mint -> jose jwtVerify', async (t) => {
  const dir = tempDir(t);
  const kp = await joseKeyPair();
  assert.ok(kp.privateJwk.d, 'jose exported no private part');
  const keyFile = writeKey(dir, 'jose.jwk', kp.privateJwk);
  const token = runOk(['key', 'mint', '--key', keyFile, '--iss', ISS, '--aud', AUD,
                       '--sub', 'svc', '--model', 'm1', '--max-tokens', '64', '--ttl', '120',
                       '--no-stream', '--endpoint', 'completions']);
  const { payload, protectedHeader } = await jose.jwtVerify(token, kp.publicKey, {
    issuer: ISS, audience: AUD, typ: 'dk+jwt', algorithms: ['EdDSA', 'Ed25519'],
  });
  assert.deepEqual(protectedHeader, { alg: 'EdDSA', kid: kp.kid, typ: 'dk+jwt' });
  assert.equal(payload.sub, 'svc');
  assert.equal(payload.exp - payload.iat, 120);
  assert.deepEqual(payload.dks.models, ['m1']);
  assert.equal(payload.dks.max_tokens, 64);
  assert.equal(payload.dks.stream, false);
  assert.deepEqual(payload.dks.endpoints, ['completions']);

  // The same private JWK with its thumbprint as "kid" is accepted too.
  const withKid = writeKey(dir, 'jose-kid.jwk', { ...kp.privateJwk, kid: kp.kid });
  const token2 = runOk(['key', 'mint', '--key', withKid, '--iss', ISS, '--aud', AUD,
                        '--sub', 'svc', '--model', 'm1', '--max-tokens', '64']);
  await jose.jwtVerify(token2, kp.publicKey, { issuer: ISS, audience: AUD, typ: 'dk+jwt' });
});

// ---------------------------------------------------------------------------------------------
// d. Rejections of jose-made tokens

test('rejects: wrong audience -> audience_mismatch', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims({ aud: 'llm-2' }), kp.privateKey, { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'audience_mismatch');
});

test('rejects: expired token -> token_expired', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims({ iat: now() - 4000, exp: now() - 3000 }), kp.privateKey,
                               { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'token_expired');
});

test('rejects: exp - iat = 7200 -> ttl_too_long', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const iat = now();
  const token = await joseSign(claims({ iat, exp: iat + 7200 }), kp.privateKey, { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'ttl_too_long');
});

test('rejects: signed by an unregistered jose key -> kid_unknown', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const stranger = await joseKeyPair();
  const token = await joseSign(claims(), stranger.privateKey, { kid: stranger.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'kid_unknown');
});

test('rejects: registered kid but signed by another key -> signature_invalid', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const forger = await joseKeyPair();
  const token = await joseSign(claims(), forger.privateKey, { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'signature_invalid');
});

test('rejects: jose UnsecuredJWT (alg none) -> alg_not_allowed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = new jose.UnsecuredJWT(claims()).encode();
  assert.equal(jose.decodeProtectedHeader(token).alg, 'none');
  runFails(verifyArgs(kp.jwkFile, token), 'alg_not_allowed');
});

test('rejects: HS256 keyed with the Ed25519 public key bytes -> alg_not_allowed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const secret = jose.base64url.decode(kp.publicJwk.x);
  assert.equal(secret.length, 32);
  const token = await joseSign(claims(), secret, { alg: 'HS256', kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'alg_not_allowed');
});

test('rejects: typ JWT -> token_malformed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims(), kp.privateKey, { kid: kp.kid, typ: 'JWT' });
  runFails(verifyArgs(kp.jwkFile, token), 'token_malformed');
});

test('rejects: unknown member inside dks -> claims_malformed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const c = claims();
  const token = await joseSign({ ...c, dks: { ...c.dks, temperature: 2 } }, kp.privateKey,
                               { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'claims_malformed');
});

test('rejects: issuer not registered -> issuer_unknown', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims({ iss: 'evil-corp' }), kp.privateKey, { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'issuer_unknown');
});

test('rejects: nbf in the future -> token_not_yet_valid', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims({ nbf: now() + 600 }), kp.privateKey, { kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'token_not_yet_valid');
});

test('rejects: jose ES256 token -> alg_not_allowed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const { privateKey } = await jose.generateKeyPair('ES256');
  const token = await joseSign(claims(), privateKey, { alg: 'ES256', kid: kp.kid });
  runFails(verifyArgs(kp.jwkFile, token), 'alg_not_allowed');
});

test('rejects: embedded "jwk" header parameter -> token_malformed', async (t) => {
  const dir = tempDir(t);
  const kp = await registeredKey(dir);
  const token = await joseSign(claims(), kp.privateKey, { kid: kp.kid, jwk: kp.publicJwk });
  runFails(verifyArgs(kp.jwkFile, token), 'token_malformed');
});

test('refuses key material: private JWK as --jwks, group-readable key for mint', async (t) => {
  const dir = tempDir(t);
  const kp = await joseKeyPair();
  const privateFile = writeKey(dir, 'issuer.jwk', kp.privateJwk);
  const token = await joseSign(claims(), kp.privateKey, { kid: kp.kid });
  runFails(verifyArgs(privateFile, token), 'key_invalid');

  fs.chmodSync(privateFile, 0o640);
  runFails(['key', 'mint', '--key', privateFile, '--iss', ISS, '--aud', AUD, '--sub', 's',
            '--model', 'm', '--max-tokens', '1'], 'key_file_unsafe');
});
