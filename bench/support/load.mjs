// One scenario of load: a warm-up run that is thrown away, then the measured run.
import autocannon from 'autocannon';
import { cpuTicks } from './cpu.mjs';
import { perRequest } from './server-counters.mjs';

function once(options) {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * Drives `request` against `url` for `durationS` seconds after `warmupS` of warm-up, and returns
 * what the table shows, plus every status seen, so a scenario that silently answered something
 * else than it should (a 500, a 409) is caught rather than measured. With `pid`, also the CPU
 * time that process spent during the measured run, and the requests it completed; with `counters`
 * (server-counters.mjs), the statements and commands the servers received per completed request.
 */
export async function measure({ url, request, connections, warmupS, durationS, pid, counters }) {
  const options = { url, connections, requests: [request] };
  if (warmupS > 0) await once({ ...options, duration: warmupS });
  const countersBefore = counters ? await counters.read() : undefined;
  const ticksBefore = pid ? cpuTicks(pid) : 0;
  const result = await once({ ...options, duration: durationS });
  const ticksAfter = pid ? cpuTicks(pid) : 0;
  const countersAfter = counters ? await counters.read() : undefined;
  const statuses = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]),
  );
  const completed = Object.values(statuses).reduce((sum, count) => sum + count, 0);
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statuses,
    errors: result.errors + result.timeouts,
    completed,
    cpuTicks: ticksAfter - ticksBefore,
    ...(countersBefore ? perRequest(countersBefore, countersAfter, completed) : {}),
  };
}
