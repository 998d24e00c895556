// What every interop test needs before it starts: the dynaseal binary (DYNASEAL_BIN) and the
// pinned npm packages (scripts/install-interop-deps runs `npm ci` here). Missing prerequisites
// fail the run loudly; nothing is ever skipped.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BIN = process.env.DYNASEAL_BIN;
if (!BIN) {
  throw new Error('DYNASEAL_BIN is not set: point it at the built dynaseal executable ' +
                  '(e.g. build/src/cli/dynaseal)');
}
try {
  fs.accessSync(BIN, fs.constants.X_OK);
} catch {
  throw new Error(`DYNASEAL_BIN=${BIN} is not an executable file`);
}

/** Imports a pinned package from this folder's node_modules, or fails saying how to get it. */
export async function requirePackage(name) {
  if (!fs.existsSync(path.join(here, 'node_modules', name, 'package.json'))) {
    throw new Error(`${name} is not installed in ${here}/node_modules: run ` +
                    'scripts/install-interop-deps (npm ci) first');
  }
  return import(name);
}
