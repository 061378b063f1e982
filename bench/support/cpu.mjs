// CPU time of an app under test, read from Linux's /proc: what a scenario costs the app itself,
// apart from MariaDB, Redis and the load generator that share the machine with it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 nearly everywhere). */
export const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User plus system CPU time of process `pid` so far, in clock ticks (`utime` + `stime` of /proc/<pid>/stat). */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The second field, the command in parentheses, may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line; the part after ')' starts at field 3.
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

export function ticksToMicroseconds(ticks) {
  return (ticks * 1e6) / CLOCK_TICKS_PER_SECOND;
}
