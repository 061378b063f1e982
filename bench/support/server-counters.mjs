// What the servers themselves received, read from their own counters: the statements MariaDB ran
// for clients (Questions: a prepared statement's execution is one, a compound statement with all it
// contains is one) and the commands Redis processed. Read around a sample, the difference over the
// requests it completed is the round trips a request costs, whoever sent them (the library, the
// handler, TypeORM).
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';

/** Opens one connection to each server; `read()` gives both counters, `close()` ends them. */
export async function openServerCounters({ databaseUrl, redisUrl }) {
  const sql = await mysql.createConnection(databaseUrl.toString());
  const redis = redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
  return {
    async read() {
      const [rows] = await sql.query("SHOW GLOBAL STATUS LIKE 'Questions'");
      const info = redis ? await redis.info('stats') : '';
      const commands = /^total_commands_processed:(\d+)/m.exec(info)?.[1];
      // Each read is itself one statement and one command, counted in the next read: left out.
      return { statements: Number(rows[0].Value) + 1, commands: commands === undefined ? undefined : Number(commands) + 1 };
    },
    async close() {
      await sql.end();
      redis?.disconnect();
    },
  };
}

/** Per completed request, from two readings; undefined where a server was not counted. */
export function perRequest(before, after, completed) {
  const per = (field) => (before[field] === undefined || !completed ? undefined : (after[field] - before[field]) / completed);
  return { statements: per('statements'), commands: per('commands') };
}
