// Interop tests: the official `openai` npm SDK (pinned in package.json) against a real dynaseal
// server in front of the stand-in engine, both started as child processes on loopback.
//
//   DYNASEAL_BIN=/path/to/dynaseal node --test openai_interop.test.mjs
//
// Needs `npm ci` in this folder first (scripts/install-interop-deps). Missing prerequisites make
// the run fail loudly; nothing is ever skipped. The client is used exactly as an application
// would use it with api.openai.com: the dynamic key is its apiKey, the server its baseURL.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { children, startChild } from './children.mjs';
import { BIN, requirePackage } from './prerequisites.mjs';


// ---------------------------------------------------------------------------------------------
// Prerequisites

const { default: OpenAI } = await requirePackage('openai');

// ---------------------------------------------------------------------------------------------
// The deployment under test: engine, server, one backend ("acme") with its signing key

const ISS = 'acme';
const AUD = 'llm-1';
const MODEL = 'demo';
const CAP = 64;

let dir;
let engine;
let server;
let baseURL;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynaseal-openai-'));
  const keygen = spawnSync(BIN, ['keygen', '--out', 'acme.jwk'],
                           { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(keygen.status, 0, `dynaseal keygen failed:\n${keygen.stderr}`);
  fs.writeFileSync(path.join(dir, 'acme.pub.jwk'), keygen.stdout);

  engine = await startChild('engine', ['engine', '--listen', '127.0.0.1:0'], dir,
                            /engine listening on (http:\/\/\S+)/);
  const engineURL = engine.match[1];

  fs.writeFileSync(path.join(dir, 'server.toml'), [
    `id = "${AUD}"`,
    'listen = "127.0.0.1:0"',
    '',
    '[[upstream]]',
    'name = "local"',
    `url = "${engineURL}"`,
    `models = ["${MODEL}"]`,
    'prompt_overhead_tokens = 0  # the stand-in engine has no chat template',
    '',
    '[[backend]]',
    `id = "${ISS}"`,
    'jwks = "acme.pub.jwk"',
    '',
  ].join('\n'));
  server = await startChild('server', ['server', '--config', 'server.toml'], dir,
                            /server listening on port (\d+)/);
  baseURL = `http://127.0.0.1:${server.match[1]}/v1`;
});

after(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** Mints a dynamic key with the acme key; `extra` are further `key mint` arguments. */
function mint({ model = MODEL, maxTokens = CAP, aud = AUD, extra = [] } = {}) {
  const args = ['key', 'mint', '--key', 'acme.jwk', '--iss', ISS, '--aud', aud, '--sub', 'user-1',
                '--model', model, '--max-tokens', String(maxTokens), ...extra];
  const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `dynaseal ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return r.stdout.trim();
}

/** The jti of a dynamic key, as `dynaseal key inspect` decodes it. */
function jtiOf(key) {
  const r = spawnSync(BIN, ['key', 'inspect', key], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `dynaseal key inspect failed:\n${r.stderr}`);
  return JSON.parse(r.stdout).claims.jti;
}

/** An SDK client presenting `apiKey`; no retries, so that every call is exactly one request. */
function client(apiKey) {
  return new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });
}

/** A test whose failure message ends with the server's and engine's output tails. */
function serverTest(name, fn) {
  test(name, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      if (e && typeof e === 'object') {
        const logs = [server, engine].filter(Boolean).map((c) =>
            `\n--- ${c.name} stderr (tail) ---\n${c.stderrTail()}` +
            `\n--- ${c.name} stdout (tail) ---\n${c.stdoutTail()}`).join('');
        try {
          e.message += logs;
        } catch {
          // a frozen error: leave it as it is
        }
      }
      throw e;
    }
  });
}

function assertUsage(usage, what) {
  assert.ok(usage, `${what}: usage missing`);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(usage[k]) && usage[k] >= 0, `${what}: usage.${k} = ${usage[k]}`);
  }
  assert.ok(usage.prompt_tokens > 0, `${what}: no prompt tokens counted`);
  assert.ok(usage.completion_tokens > 0, `${what}: no completion tokens counted`);
  assert.ok(usage.completion_tokens <= CAP, `${what}: completion above the key's cap`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens,
               `${what}: total_tokens != prompt_tokens + completion_tokens`);
}

/**
 * Awaits `call()` and asserts it is rejected with an SDK error of class `Class` (an APIError
 * subclass, or APIError itself), HTTP `status` and dynaseal error `code`. The SDK keeps the body's
 * `error` object as err.error and copies its code and type to err.code and err.type.
 */
async function assertApiError(call, { Class, status, code, type }) {
  let err;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${status} ${code}, but the call succeeded`);
  assert.ok(err instanceof OpenAI.APIError,
            `expected an OpenAI.APIError, got ${err?.constructor?.name}: ${err?.stack ?? err}`);
  assert.ok(err instanceof Class,
            `expected ${Class.name}, got ${err.constructor.name} (${err.status}): ${err.message}`);
  assert.equal(err.status, status, `status of ${err.constructor.name}: ${err.message}`);
  assert.equal(err.code, code, `err.code: ${err.message}`);
  assert.equal(typeof err.error, 'object', 'err.error (the body\'s error object) missing');
  assert.equal(err.error.code, code);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0, 'empty error message');
  if (type) {
    assert.equal(err.type, type);
    assert.equal(err.error.type, type);
  }
  assert.ok(err.message.startsWith(`${status} `), `SDK message: ${err.message}`);
  return err;
}

const CHAT_PROMPT = 'Explain in a few words why short-lived signed keys are safer on devices.';
const LEGACY_PROMPT = 'Once upon a time, a gateway counted every token';
const chatMessages = (content = CHAT_PROMPT) => [{ role: 'user', content }];

// ---------------------------------------------------------------------------------------------
// a. chat completions, not streamed

serverTest('chat.completions.create: content, usage, finish_reason, event id', async () => {
  const key = mint();
  const { data, response } = await client(key).chat.completions
      .create({ model: MODEL, messages: chatMessages() })
      .withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-dynaseal-event-id'), jtiOf(key),
               'x-dynaseal-event-id must be the key\'s jti');
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, MODEL);
  assert.equal(typeof data.id, 'string');
  assert.equal(data.choices.length, 1);
  const [choice] = data.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0, 'empty content');
  assert.ok(['stop', 'length'].includes(choice.finish_reason),
            `finish_reason ${choice.finish_reason}`);
  assertUsage(data.usage, 'chat');
});

serverTest('chat.completions.create: max_tokens below the cap is honoured', async () => {
  const data = await client(mint()).chat.completions.create(
      { model: MODEL, messages: chatMessages(), max_tokens: 3 });
  assert.equal(data.usage.completion_tokens, 3);
  assert.equal(data.choices[0].finish_reason, 'length');
  assertUsage(data.usage, 'chat max_tokens 3');
});

// ---------------------------------------------------------------------------------------------
// b. chat completions, streamed

serverTest('chat.completions.create stream: deltas equal the non-streamed text', async () => {
  const whole = await client(mint()).chat.completions.create(
      { model: MODEL, messages: chatMessages() });
  const expected = whole.choices[0].message.content;

  const stream = await client(mint()).chat.completions.create(
      { model: MODEL, messages: chatMessages(), stream: true });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, MODEL);
    assert.ok(chunk.usage === undefined || chunk.usage === null,
              `usage sent without stream_options.include_usage: ${JSON.stringify(chunk)}`);
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 1, `only ${chunks} chunk(s)`);
  assert.ok(text.length > 0, 'concatenated deltas are empty');
  assert.equal(text, expected, 'streamed text differs from the non-streamed text');
  assert.equal(finish, whole.choices[0].finish_reason);
});

serverTest('chat.completions.create stream with include_usage: final chunk has usage',
           async () => {
  const whole = await client(mint()).chat.completions.create(
      { model: MODEL, messages: chatMessages() });

  const stream = await client(mint()).chat.completions.create({
    model: MODEL,
    messages: chatMessages(),
    stream: true,
    stream_options: { include_usage: true },
  });
  const received = [];
  for await (const chunk of stream) received.push(chunk);
  assert.ok(received.length > 1);
  const last = received.at(-1);
  assertUsage(last.usage, 'stream usage chunk');
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.deepEqual(last.usage, whole.usage, 'streamed usage differs from the non-streamed one');
  for (const chunk of received.slice(0, -1)) {
    assert.ok(chunk.usage === undefined || chunk.usage === null,
              `usage before the final chunk: ${JSON.stringify(chunk)}`);
  }
  const text = received.map((c) => c.choices.map((x) => x.delta?.content ?? '').join('')).join('');
  assert.equal(text, whole.choices[0].message.content);
});

serverTest('chat.completions.stream helper: finalChatCompletion', async () => {
  const whole = await client(mint()).chat.completions.create(
      { model: MODEL, messages: chatMessages() });
  const runner = client(mint()).chat.completions.stream({
    model: MODEL,
    messages: chatMessages(),
    stream_options: { include_usage: true },
  });
  let deltas = '';
  runner.on('content', (delta) => { deltas += delta; });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
  assert.equal(deltas, whole.choices[0].message.content);
  assert.deepEqual(final.usage, whole.usage);
});

// ---------------------------------------------------------------------------------------------
// c. legacy completions

serverTest('completions.create: not streamed and streamed', async () => {
  const whole = await client(mint()).completions.create({ model: MODEL, prompt: LEGACY_PROMPT });
  assert.equal(whole.object, 'text_completion');
  assert.equal(whole.model, MODEL);
  assert.equal(whole.choices.length, 1);
  assert.equal(typeof whole.choices[0].text, 'string');
  assert.ok(whole.choices[0].text.length > 0, 'empty text');
  assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason));
  assertUsage(whole.usage, 'completions');

  const stream = await client(mint()).completions.create(
      { model: MODEL, prompt: LEGACY_PROMPT, stream: true });
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'text_completion');
    assert.ok(chunk.usage === undefined || chunk.usage === null,
              `usage sent without stream_options.include_usage: ${JSON.stringify(chunk)}`);
    for (const c of chunk.choices) text += c.text ?? '';
  }
  assert.ok(chunks > 1, `only ${chunks} chunk(s)`);
  assert.equal(text, whole.choices[0].text);

  const withUsage = await client(mint()).completions.create({
    model: MODEL,
    prompt: LEGACY_PROMPT,
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage = null;
  for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage;
  assert.deepEqual(usage, whole.usage);
});

// ---------------------------------------------------------------------------------------------
// d. models

serverTest('models.list: the key\'s models', async () => {
  const ids = [];
  for await (const m of client(mint({ extra: ['--uses', '1'] })).models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes(MODEL), `models: ${JSON.stringify(ids)}`);
});

// ---------------------------------------------------------------------------------------------
// e. errors as the SDK's APIError subclasses

serverTest('a reused single-use key: AuthenticationError 401 uses_exhausted', async () => {
  const c = client(mint());
  await c.chat.completions.create({ model: MODEL, messages: chatMessages('hi') });
  await assertApiError(
      () => c.chat.completions.create({ model: MODEL, messages: chatMessages('hi') }),
      { Class: OpenAI.AuthenticationError, status: 401, code: 'uses_exhausted',
        type: 'authentication_error' });
  // The legacy endpoint refuses it as well.
  await assertApiError(() => c.completions.create({ model: MODEL, prompt: 'hi' }),
                       { Class: OpenAI.AuthenticationError, status: 401, code: 'uses_exhausted' });
});

serverTest('a key for another model: PermissionDeniedError 403 model_not_allowed', async () => {
  await assertApiError(
      () => client(mint({ model: 'other-model' }))
                .chat.completions.create({ model: MODEL, messages: chatMessages() }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'model_not_allowed',
        type: 'permission_error' });
});

serverTest('max_tokens above the cap: PermissionDeniedError 403 max_tokens_exceeded', async () => {
  const key = mint();
  const c = client(key);
  await assertApiError(
      () => c.chat.completions.create(
          { model: MODEL, messages: chatMessages(), max_tokens: CAP + 1 }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'max_tokens_exceeded' });
  await assertApiError(
      () => c.chat.completions.create(
          { model: MODEL, messages: chatMessages(), max_completion_tokens: CAP + 1 }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'max_tokens_exceeded' });
  await assertApiError(
      () => c.completions.create({ model: MODEL, prompt: LEGACY_PROMPT, max_tokens: CAP + 1 }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'max_tokens_exceeded' });
  // Refusals before the use is taken leave the single use intact (DESIGN §3).
  const ok = await c.chat.completions.create(
      { model: MODEL, messages: chatMessages(), max_tokens: CAP });
  assertUsage(ok.usage, 'after refusals');
});

serverTest('n > 1: PermissionDeniedError 403 n_not_allowed', async () => {
  await assertApiError(
      () => client(mint()).chat.completions.create(
          { model: MODEL, messages: chatMessages(), n: 2 }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'n_not_allowed' });
});

serverTest('stream with a --no-stream key: PermissionDeniedError 403 stream_not_allowed',
           async () => {
  const c = client(mint({ extra: ['--no-stream'] }));
  await assertApiError(
      () => c.chat.completions.create({ model: MODEL, messages: chatMessages(), stream: true }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'stream_not_allowed' });
  await assertApiError(
      () => c.completions.create({ model: MODEL, prompt: LEGACY_PROMPT, stream: true }),
      { Class: OpenAI.PermissionDeniedError, status: 403, code: 'stream_not_allowed' });
  // The same key serves a plain request.
  const ok = await c.chat.completions.create({ model: MODEL, messages: chatMessages() });
  assertUsage(ok.usage, 'no-stream key, plain request');
});

serverTest('a garbage apiKey: AuthenticationError 401 token_malformed', async () => {
  await assertApiError(
      () => client('sk-not-a-dynamic-key')
                .chat.completions.create({ model: MODEL, messages: chatMessages() }),
      { Class: OpenAI.AuthenticationError, status: 401, code: 'token_malformed',
        type: 'authentication_error' });
});

serverTest('a key for another server: AuthenticationError 401 audience_mismatch', async () => {
  await assertApiError(
      () => client(mint({ aud: 'llm-2' }))
                .chat.completions.create({ model: MODEL, messages: chatMessages() }),
      { Class: OpenAI.AuthenticationError, status: 401, code: 'audience_mismatch' });
});

serverTest('a spent budget: APIError 402 budget_exhausted, and never more than the budget', async () => {
  // A prompt whose bound (its body's bytes) does not fit the budget is refused before the
  // engine sees it.
  const tiny = client(mint({ extra: ['--uses', '5', '--budget', '10'] }));
  const err = await assertApiError(
      () => tiny.chat.completions.create({ model: MODEL, messages: chatMessages() }),
      { Class: OpenAI.APIError, status: 402, code: 'budget_exhausted' });
  // The SDK has no class of its own for 402.
  for (const Sub of [OpenAI.AuthenticationError, OpenAI.PermissionDeniedError,
                     OpenAI.BadRequestError, OpenAI.RateLimitError, OpenAI.InternalServerError]) {
    assert.ok(!(err instanceof Sub), `402 mapped to ${Sub.name}`);
  }
  // A multi-use key spent to the end: everything the engine reported, prompts included, stays
  // within the budget.
  const budget = 1000;
  const c = client(mint({ extra: ['--uses', '100', '--budget', String(budget)] }));
  let reported = 0;
  let served = 0;
  for (;;) {
    try {
      const r = await c.chat.completions.create(
          { model: MODEL, messages: chatMessages('count every one of these words please') });
      assertUsage(r.usage, `budget key, use ${served + 1}`);
      reported += r.usage.total_tokens;
      served += 1;
    } catch (e) {
      assert.equal(e.status, 402, `refused with ${e.status} ${e.code}`);
      assert.equal(e.code, 'budget_exhausted');
      break;
    }
    assert.ok(served < 100, 'the budget never ran out');
  }
  assert.ok(served >= 2, `only ${served} uses served`);
  assert.ok(reported <= budget, `${reported} tokens reported on a budget of ${budget}`);
});

// ---------------------------------------------------------------------------------------------
// f. engine faults

serverTest('an engine 500 with the SDK\'s default retries: 502 upstream_error, not uses_exhausted',
           async () => {
  // The SDK retries 5xx twice by default; the server's x-should-retry: false stops it, so the
  // single-use key's failure reaches the application as what it is.
  const retrying = new OpenAI({ apiKey: mint(), baseURL, timeout: 20_000 });
  assert.equal(retrying.maxRetries, 2, 'the SDK default changed');
  await assertApiError(
      () => retrying.chat.completions.create(
          { model: MODEL, messages: chatMessages('please fail [[fault:status500]] now') }),
      { Class: OpenAI.InternalServerError, status: 502, code: 'upstream_error' });
});

serverTest('an engine 500: InternalServerError 502 upstream_error', async () => {
  await assertApiError(
      () => client(mint()).chat.completions.create(
          { model: MODEL, messages: chatMessages('please fail [[fault:status500]] now') }),
      { Class: OpenAI.InternalServerError, status: 502, code: 'upstream_error' });
  await assertApiError(
      () => client(mint()).chat.completions.create({
        model: MODEL,
        messages: chatMessages('please fail [[fault:status500]] now'),
        stream: true,
      }),
      { Class: OpenAI.InternalServerError, status: 502, code: 'upstream_error' });
  await assertApiError(
      () => client(mint()).completions.create(
          { model: MODEL, prompt: 'please fail [[fault:status500]] now' }),
      { Class: OpenAI.InternalServerError, status: 502, code: 'upstream_error' });
});
