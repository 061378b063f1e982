// Starting and stopping the apps under test as child processes, each on a port of its own.
import { spawn, execFileSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { appNode } from './app-node.mjs';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `node <script>` on the apps' Node (app-node.mjs) and waits until `readyPath` answers (any HTTP status). */
export async function startServer(script, env, readyPath, cwd = process.cwd()) {
  const port = await freePort();
  const child = spawn(appNode().path, [script], {
    cwd,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${script} exited at start:\n${output}`);
    try {
      await fetch(`${url}${readyPath}`, { method: 'POST' });
      return { url, child, output: () => output, stop: () => stop(child) };
    } catch {
      await sleep(100);
    }
  }
  await stop(child);
  throw new Error(`${script} did not start within 30 s:\n${output}`);
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

/** Resolves when something accepts TCP connections on host:port, else explains what to start. */
export async function requireService(name, host, port, howToStart) {
  await new Promise((resolve, reject) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', () => reject(new Error(`${name} is not answering on ${host}:${port}. Start it: ${howToStart}`)));
  });
}

export function run(command, args, cwd) {
  execFileSync(command, args, { cwd, stdio: 'inherit' });
}
