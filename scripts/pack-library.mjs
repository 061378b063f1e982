// Packs libs/idempotency exactly as `npm publish` would. Build first (`npm run build`).
// As a command: `node scripts/pack-library.mjs <folder>` prints the tarball's path.
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LIBRARY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../libs/idempotency');

/** Runs `npm pack` on the built library into `destination`; returns the tarball's path. */
export function packLibrary(destination) {
  const output = execFileSync('npm', ['pack', '--json', '--pack-destination', destination], {
    cwd: LIBRARY_DIR,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [{ filename }] = JSON.parse(output);
  return join(destination, filename);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(packLibrary(resolve(process.argv[2] ?? '.')));
}
