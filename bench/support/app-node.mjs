// Which Node.js runs the apps under test: the bench's own, or the one BENCH_NODE names, a major
// version (installed from the npm registry by scripts/node-release.sh) or a path to a node binary.
// The load generator stays on the bench's Node: only the apps' runtime changes between runs.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

let resolved;

/** `{ path, version }` of the apps' Node, resolved once. */
export function appNode() {
  resolved ??= resolve(process.env.BENCH_NODE);
  return resolved;
}

function resolve(wanted) {
  if (!wanted) return { path: process.execPath, version: process.version };
  let path = wanted;
  if (/^\d+$/.test(wanted)) {
    const script = join(import.meta.dirname, '../../scripts/node-release.sh');
    const [binFolder] = execFileSync('bash', [script, wanted], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n');
    path = join(binFolder, 'node');
  }
  const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
  return { path, version };
}
