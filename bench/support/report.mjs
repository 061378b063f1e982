// The bench tables: printed, and optionally written as JSON and Markdown.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { appNode } from './app-node.mjs';

export function machine() {
  const cpu = cpus();
  const apps = appNode().version;
  return `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${apps}${apps === process.version ? '' : ` (the apps; the bench itself on ${process.version})`}`;
}

/**
 * Each row with its ratios to its own group's baseline (`row.baseline` names it) measured on the
 * same platform in the same run: ours to ours, the atomic route's to its unkeyed twin, the peer's to
 * the peer's route without @Idempotent().
 */
function withRatios(results) {
  return results.map((row) => {
    const baseline = results.find((other) => other.platform === row.platform && other.scenario === row.baseline);
    return {
      ...row,
      ratio: baseline ? row.requestsPerSecond / baseline.requestsPerSecond : undefined,
      cpuRatio: baseline ? row.cpuPerRequestUs / baseline.cpuPerRequestUs : undefined,
    };
  });
}

const fixed = (value, digits) => (value === undefined || !Number.isFinite(value) ? '' : value.toFixed(digits));

/** Commands per request as Redis counts them (each call a script makes included), and the scripts among them. */
function redisCell(row) {
  const commands = fixed(row.commandsPerRequest, 2);
  const scripts = fixed(row.scriptsPerRequest, 2);
  return commands && scripts && row.scriptsPerRequest > 0 ? `${commands} (${scripts})` : commands;
}

export function markdownTable(results) {
  const lines = [
    '| platform | scenario | requests/s | p50 ms | p99 ms | x baseline | CPU µs/req | CPU x baseline | MariaDB statements/req | Redis commands/req (scripts among them) | baseline of the ratios | statuses |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of withRatios(results)) {
    const statuses = Object.entries(row.statuses).map(([status, count]) => `${status}: ${count}`).join(', ');
    lines.push(
      `| ${row.platform} | ${row.scenario} | ${row.requestsPerSecond.toFixed(0)} | ${row.p50} | ${row.p99} | ` +
        `${fixed(row.ratio, 2)} | ${fixed(row.cpuPerRequestUs, 0)} | ${fixed(row.cpuRatio, 2)} | ` +
        `${fixed(row.statementsPerRequest, 2)} | ${redisCell(row)} | ${row.baseline} | ` +
        `${statuses}${row.errors ? `, errors: ${row.errors}` : ''}${row.unexpected.length ? ' **unexpected**' : ''} |`,
    );
  }
  return lines.join('\n');
}

export function recoveryTable(recovery) {
  const lines = [
    '| route | mode | lease | A killed after | retry accepted by B after the kill | 2xx after the kill | retries | answers before the 2xx | rows written |',
    '|---|---|---|---:|---:|---:|---:|---|---|',
  ];
  for (const row of recovery) {
    const before = Object.entries(row.answersBefore).map(([answer, count]) => `${answer}: ${count}`).join(', ') || 'none';
    const seconds = (ms) => (ms === undefined ? `none within ${row.capS} s` : `${(ms / 1000).toFixed(2)} s`);
    lines.push(
      `| ${row.route} | ${row.mode} | ${row.lease} | ${row.killedAfterMs} ms | ${seconds(row.acceptedAfterMs)} | ` +
        `${seconds(row.answeredAfterMs)} | ${row.attempts} | ${before} | ${row.rows} |`,
    );
  }
  return lines.join('\n');
}

function markdown(results, recovery, recoverySettings) {
  const parts = [];
  if (results.length) parts.push(markdownTable(results));
  if (recovery.length) parts.push(`kill -9 recovery: ${recoverySettings}.\n\n${recoveryTable(recovery)}`);
  return parts.join('\n\n');
}

export function printTables(results, recovery, recoverySettings) {
  console.log(`\n${markdown(results, recovery, recoverySettings)}\n`);
}

export function writeReports(results, recovery, settings, recoverySettings, { json, markdown: markdownFile }) {
  const header = `Measured ${new Date().toISOString()} on ${machine()}; ${settings}.`;
  if (json) {
    const report = { header, results: withRatios(results), recovery, recoverySettings };
    writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  }
  if (markdownFile) writeFileSync(markdownFile, `${header}\n\n${markdown(results, recovery, recoverySettings)}\n`);
}
