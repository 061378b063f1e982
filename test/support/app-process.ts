import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const MAIN = join(process.cwd(), 'dist/src/main.js');

/** Test API keys of every spawned instance. */
export const FLEET_API_KEYS = 'key-acme:acme,key-globex:globex';

/** One instance of the built example API, running as a real child process. */
export interface AppProcess {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited(): Promise<number | NodeJS.Signals | null>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** How to start the process itself, beside its environment. */
export interface AppProcessOptions {
  /** Node options before the script, such as `--import <preload>`. */
  readonly nodeArgs?: readonly string[];
}

/**
 * Starts `node dist/src/main.js` (built by `npm test` before Jest runs) with the given environment
 * and waits until it answers `GET /healthz`.
 */
export async function startAppProcess(env: Record<string, string>, options: AppProcessOptions = {}): Promise<AppProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does).`);
  const port = await freePort();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), MAIN], {
    // Fleet suites are about exactly-once, not rate limits: a budget no run reaches unless a test sets
    // one; and no RabbitMQ consumer unless a suite asks for one, as instances would share one queue.
    env: { ...process.env, NODE_OPTIONS: '', API_KEYS: FLEET_API_KEYS, RATE_LIMIT_PER_MINUTE: '1000000', RABBITMQ_URL: 'off', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = `http://127.0.0.1:${port}`;
  const instance: AppProcess = {
    port,
    url,
    child,
    output: () => output,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exit;
    },
  };
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode} at start:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return instance;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await instance.stop();
  throw new Error(`the app did not answer /healthz within 20 s:\n${output}`);
}

/** An HTTP answer as a test compares it: status, headers and the exact body bytes. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

export async function send(
  url: string,
  method: string,
  path: string,
  options: { key?: string; apiKey?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const headers: Record<string, string> = { 'X-Api-Key': options.apiKey ?? 'key-acme' };
  if (options.key) headers['Idempotency-Key'] = options.key;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const attempt = () =>
    fetch(`${url}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  // A pooled keep-alive socket the server closed just as this request went out fails with "other side closed"
  // before the server saw anything; the client a user runs retries that, with the same key, and so do we (once).
  const response = await attempt().catch((error: unknown) => {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw error;
    return attempt();
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** The `error.code` of an API error body. */
export function codeOf(answer: RawAnswer): string | undefined {
  return (JSON.parse(answer.body.toString()) as { error?: { code?: string } }).error?.code;
}

/** `items` in a random order (Fisher-Yates, in place), so that copies of one request do not arrive in step. */
export function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Runs `tasks` with at most `concurrency` in flight at once. */
export async function runConcurrently<T>(tasks: ReadonlyArray<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, tasks.length) }, async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  });
  await Promise.all(workers);
  return results;
}

/** Polls `probe` until it returns a value, at most `attempts` times. */
export async function eventually<T>(probe: () => Promise<T | undefined>, attempts = 100, everyMs = 100): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  throw new Error(`condition not met after ${attempts} attempts`);
}
