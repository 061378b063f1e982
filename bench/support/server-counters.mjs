// What the servers themselves received, read from their own counters: the statements MariaDB ran
// for clients (Questions: a prepared statement's execution is one, a compound statement with all it
// contains is one), and the commands Redis processed (total_commands_processed, which also counts
// each call a Lua script makes) with the scripts among them (EVAL and EVALSHA calls, from
// commandstats): a client's round trips to Redis are its scripts plus its plain commands. Read
// around a sample, the difference over the requests it completed is what a request costs, whoever
// sent it (the library, the handler, TypeORM).
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';

/** Opens one connection to each server; `read()` gives both counters, `close()` ends them. */
export async function openServerCounters({ databaseUrl, redisUrl }) {
  const sql = await mysql.createConnection(databaseUrl.toString());
  const redis = redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
  return {
    async read() {
      const [rows] = await sql.query("SHOW GLOBAL STATUS LIKE 'Questions'");
      const info = redis ? `${await redis.info('stats')}\n${await redis.info('commandstats')}` : '';
      const commands = /^total_commands_processed:(\d+)/m.exec(info)?.[1];
      const callsOf = (command) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      return {
        statements: Number(rows[0].Value),
        commands: commands === undefined ? undefined : Number(commands),
        scripts: commands === undefined ? undefined : callsOf('eval') + callsOf('evalsha'),
      };
    },
    async close() {
      await sql.end();
      redis?.disconnect();
    },
  };
}

// What one read adds to the counters between two readings: its SHOW STATUS, its two INFOs.
const READ_COST = { statements: 1, commands: 2, scripts: 0 };

/** Per completed request, from two readings; undefined where a server was not counted. */
export function perRequest(before, after, completed) {
  const per = (field) =>
    before[field] === undefined || !completed ? undefined : (after[field] - before[field] - READ_COST[field]) / completed;
  return { statements: per('statements'), commands: per('commands'), scripts: per('scripts') };
}
