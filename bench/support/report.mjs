// The bench table: printed, and optionally written as JSON and Markdown.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

export function machine() {
  const cpu = cpus();
  return `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
}

/** Each row with its ratio to the baseline measured on the same platform in the same run. */
function withRatios(results) {
  return results.map((row) => {
    const baseline = results.find((other) => other.platform === row.platform && other.scenario === 'baseline');
    return { ...row, ratio: baseline ? row.requestsPerSecond / baseline.requestsPerSecond : undefined };
  });
}

export function markdownTable(results) {
  const lines = [
    '| platform | scenario | requests/s | p50 ms | p99 ms | x baseline | statuses |',
    '|---|---|---:|---:|---:|---:|---|',
  ];
  for (const row of withRatios(results)) {
    const statuses = Object.entries(row.statuses).map(([status, count]) => `${status}: ${count}`).join(', ');
    lines.push(
      `| ${row.platform} | ${row.scenario} | ${row.requestsPerSecond.toFixed(0)} | ${row.p50} | ${row.p99} | ` +
        `${row.ratio === undefined ? '' : row.ratio.toFixed(2)} | ${statuses}${row.errors ? `, errors: ${row.errors}` : ''} |`,
    );
  }
  return lines.join('\n');
}

export function writeReports(results, settings, { json, markdown }) {
  const header = `Measured ${new Date().toISOString()} on ${machine()}; ${settings}.`;
  if (json) writeFileSync(json, JSON.stringify({ header, results: withRatios(results) }, null, 2) + '\n');
  if (markdown) writeFileSync(markdown, `${header}\n\n${markdownTable(results)}\n`);
}
