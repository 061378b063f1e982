// kill -9 recovery: how long a retry waits after the instance running its request dies.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer } from './processes.mjs';

/**
 * Starts two instances on one database, warms both with `warmBody`, sends `body` with a new key to
 * A (the body holds a processingMs that keeps the handler busy), kills A with SIGKILL `killAfterMs` later, then retries
 * the same key and body on B every `retryEveryMs` until one answers 2xx or `capMs` has passed. Each
 * retry has a client timeout, so a retry that hangs is counted and the next one sent. Measures
 * whatever the library does: nothing here assumes how long a dead claim blocks its key.
 */
export async function measureKillRecovery({
  script,
  env,
  path,
  headers,
  body,
  warmBody,
  rowsOf,
  killAfterMs = 300,
  retryEveryMs = 50,
  clientTimeoutMs = 5000,
  capMs = 90_000,
}) {
  const a = await startServer(script, env, '/healthz');
  let b;
  try {
    b = await startServer(script, env, '/healthz');
    const send = (url, key, payload, timeoutMs) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers, 'idempotency-key': key },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs),
      });
    // Both instances warm, so that A has claimed the key well before it is killed.
    for (const instance of [a, b]) {
      const warm = await send(instance.url, randomUUID(), warmBody, 10_000);
      if (!warm.ok) throw new Error(`warming ${path} answered ${warm.status}: ${await warm.text()}`);
    }
    const key = randomUUID();
    send(a.url, key, body, capMs).catch(() => undefined);
    await sleep(killAfterMs);
    const exited = new Promise((resolve) => a.child.once('exit', resolve));
    const killedAt = performance.now();
    a.child.kill('SIGKILL');
    await exited;

    const answersBefore = {};
    let attempts = 0;
    let accepted;
    while (performance.now() - killedAt < capMs) {
      const sentAt = performance.now();
      attempts++;
      let answer;
      try {
        const response = await send(b.url, key, body, clientTimeoutMs);
        const text = await response.text();
        if (response.ok) {
          accepted = { sentAt, answeredAt: performance.now(), status: response.status, body: JSON.parse(text) };
          break;
        }
        answer = String(response.status);
      } catch (error) {
        answer = error?.name === 'TimeoutError' ? `no answer in ${clientTimeoutMs} ms` : `error ${error?.code ?? error?.name}`;
      }
      answersBefore[answer] = (answersBefore[answer] ?? 0) + 1;
      await sleep(retryEveryMs);
    }
    return {
      killedAfterMs: killAfterMs,
      acceptedAfterMs: accepted ? accepted.sentAt - killedAt : undefined,
      answeredAfterMs: accepted ? accepted.answeredAt - killedAt : undefined,
      attempts,
      answersBefore,
      rows: await rowsOf(accepted?.body),
      capS: capMs / 1000,
      clientTimeoutMs,
      retryEveryMs,
    };
  } finally {
    await b?.stop();
    await a.stop();
  }
}
