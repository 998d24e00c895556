// Child processes for the interop tests: start `dynaseal ROLE ...`, wait for its listening line,
// keep its output tails for failure messages, stop it (SIGTERM, then SIGKILL). Every child still
// alive when node exits is killed.

import { spawn } from 'node:child_process';

import { BIN } from './prerequisites.mjs';

const STARTUP_MS = 10_000;
const STOP_MS = 5_000;
const TAIL_BYTES = 4096;

/** Every child started here; killed (SIGKILL) if still alive when the process exits. */
export const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
});

/**
 * Starts `dynaseal ARGS` in `cwd` and waits until a stdout line matches `ready`.
 * Resolves to { proc, match, stderrTail(), stdoutTail(), stop() }. Rejects with the child's
 * output tails when it exits or does not get ready within STARTUP_MS.
 */
export function startChild(name, args, cwd, ready) {
  const proc = spawn(BIN, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const child = {
    name,
    proc,
    match: null,
    stdoutTail: () => out.slice(-TAIL_BYTES),
    stderrTail: () => err.slice(-TAIL_BYTES),
    stop: () => stopChild(child),
  };
  children.add(child);
  const describe = (why) =>
      `${name} (${BIN} ${args.join(' ')}) ${why}\n` +
      `--- ${name} stdout (tail) ---\n${child.stdoutTail()}\n` +
      `--- ${name} stderr (tail) ---\n${child.stderrTail()}`;
  // Keep draining both pipes for the child's whole life, so that it never blocks on a full pipe.
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { err = (err + d).slice(-4 * TAIL_BYTES); });
  proc.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(describe(`did not print its listening line within ${STARTUP_MS} ms`)));
    }, STARTUP_MS);
    proc.stdout.on('data', (d) => {
      out = (out + d).slice(-4 * TAIL_BYTES);
      if (child.match) return;
      const m = out.match(ready);
      if (m) {
        child.match = m;
        clearTimeout(timer);
        resolve(child);
      }
    });
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(describe(`could not be started: ${e.message}`)));
    });
    proc.on('exit', (code, signal) => {
      if (child.match) return;
      clearTimeout(timer);
      // Let the pipes flush what the child wrote before it went.
      setImmediate(() => reject(new Error(describe(
          `exited before it was ready (code ${code}, signal ${signal})`))));
    });
  });
}

/** SIGTERM, then SIGKILL after STOP_MS; resolves once the child is gone. */
export function stopChild(child) {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) {
    children.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_MS);
    proc.once('exit', () => {
      clearTimeout(timer);
      children.delete(child);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

