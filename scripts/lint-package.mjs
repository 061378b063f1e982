// The packed library as the registry and users' tooling would see it: publint for package.json and
// the files shipped, arethetypeswrong for what TypeScript resolves through `exports` (ESM-only).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIBRARY_DIR, packLibrary } from './pack-library.mjs';

// The npm page shows the package's own README: its options table must be the repository's.
const optionRows = (path) => {
  const text = readFileSync(path, 'utf8');
  const section = text.slice(text.indexOf('\n## Options'), text.indexOf('\n## ', text.indexOf('\n## Options') + 1));
  return section.split('\n').filter((line) => line.startsWith('|'));
};
if (optionRows('README.md').join('\n') !== optionRows(join(LIBRARY_DIR, 'README.md')).join('\n')) {
  console.error('package checks failed: the options table of libs/idempotency/README.md differs from README.md');
  process.exit(1);
}

const folder = mkdtempSync(join(tmpdir(), 'idempotency-pack-'));
try {
  const tarball = packLibrary(folder);
  const run = (bin, args) => execFileSync(join('node_modules', '.bin', bin), args, { stdio: 'inherit' });
  run('publint', ['run', tarball, '--strict']);
  run('attw', [tarball, '--profile', 'esm-only', '--no-emoji']);
  console.log(`package checks passed: ${tarball.split('/').pop()}`);
} catch (error) {
  // The linters have printed what is wrong; the stack of the failed child process adds nothing.
  console.error(`package checks failed: ${error.message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  rmSync(folder, { recursive: true, force: true });
}
