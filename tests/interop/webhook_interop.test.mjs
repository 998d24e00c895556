// Interop: an independent verifier accepts the server's usage callbacks. The npm
// `standardwebhooks` package implements only the symmetric "v1" (HMAC) scheme, so the check is
// done the way the Standard Webhooks spec describes "v1a", with node's own Ed25519
// (crypto.verify) and the identity key the server publishes at /.well-known/dynaseal as a JWK:
//
//   signed content = `${webhook-id}.${webhook-timestamp}.${raw body}`
//   webhook-signature = "v1a," + base64(Ed25519 signature of the signed content)
//
//   DYNASEAL_BIN=/path/to/dynaseal node --test webhook_interop.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { children, startChild } from './children.mjs';
import { BIN } from './prerequisites.mjs';

let dir;
let server;
let receiver;
const received = [];  // { headers, body } of every callback, in arrival order
let waiters = [];

function wakeWaiters() {
  const still = [];
  for (const w of waiters) (w.done() ? w.resolve() : still.push(w));
  waiters = still;
}

/** Resolves once `done()` holds, rejects after `ms`. */
function until(done, ms = 10_000) {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
    waiters.push({ done, resolve: () => { clearTimeout(timer); resolve(); } });
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynaseal-webhook-'));
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
      wakeWaiters();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const callbackURL = `http://127.0.0.1:${receiver.address().port}/v1/callbacks/usage`;

  const keygen = spawnSync(BIN, ['keygen', '--out', 'acme.jwk'],
                           { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(keygen.status, 0, keygen.stderr);
  fs.writeFileSync(path.join(dir, 'acme.pub.jwk'), keygen.stdout);
  const engine = await startChild('engine', ['engine', '--listen', '127.0.0.1:0'], dir,
                                  /engine listening on (http:\/\/\S+)/);
  fs.writeFileSync(path.join(dir, 'server.toml'), [
    'id = "llm-1"',
    'listen = "127.0.0.1:0"',
    '[[upstream]]',
    'name = "local"',
    `url = "${engine.match[1]}"`,
    'models = ["demo"]',
    '[[backend]]',
    'id = "acme"',
    'jwks = "acme.pub.jwk"',
    `callback_url = "${callbackURL}"`,
    '',
  ].join('\n'));
  server = await startChild('server', ['server', '--config', 'server.toml'], dir,
                            /server listening on port (\d+)/);
});

after(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  await new Promise((resolve) => receiver.close(resolve));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function mint() {
  const r = spawnSync(BIN, ['key', 'mint', '--key', 'acme.jwk', '--iss', 'acme', '--aud', 'llm-1',
                            '--sub', 'user-1', '--model', 'demo', '--max-tokens', '8'],
                      { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** Node's own Ed25519 check of one callback against the published identity key. */
function verifyV1a(identity, { headers, body }) {
  const content = Buffer.concat([
    Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`), body]);
  return headers['webhook-signature'].split(' ').some((sig) => {
    if (!sig.startsWith('v1a,')) return false;
    return crypto.verify(null, content, identity, Buffer.from(sig.slice(4), 'base64'));
  });
}

test('node verifies the v1a signature of a usage callback with the published key', async () => {
  const port = server.match[1];
  const wellKnown = await (await fetch(`http://127.0.0.1:${port}/.well-known/dynaseal`)).json();
  assert.equal(wellKnown.jwks.keys.length, 1);
  const identity = crypto.createPublicKey({ key: wellKnown.jwks.keys[0], format: 'jwk' });

  const key = mint();
  const answer = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(answer.status, 200);
  const eventId = answer.headers.get('x-dynaseal-event-id');
  const completion = await answer.json();

  await until(() => received.length >= 1);
  const callback = received[0];
  assert.equal(callback.headers['webhook-id'], `${eventId}.1`);
  assert.match(callback.headers['webhook-timestamp'], /^[1-9][0-9]*$/);
  const age = Math.abs(Date.now() / 1000 - Number(callback.headers['webhook-timestamp']));
  assert.ok(age < 300, `timestamp ${age} s away from now`);
  assert.ok(verifyV1a(identity, callback), 'node rejected the signature');

  const event = JSON.parse(callback.body.toString('utf8'));
  assert.equal(event.type, 'usage');
  assert.equal(event.event_id, eventId);
  assert.equal(event.use, 1);
  assert.equal(event.status, 'ok');
  assert.deepEqual(event.usage, completion.usage);

  // The same check fails for any change to what was signed.
  const tampered = { headers: callback.headers, body: Buffer.from(callback.body.toString() + ' ') };
  assert.equal(verifyV1a(identity, tampered), false);
  const otherId = { headers: { ...callback.headers, 'webhook-id': `${eventId}.2` },
                    body: callback.body };
  assert.equal(verifyV1a(identity, otherId), false);
});
