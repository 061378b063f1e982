import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createPaymentsApp, type HttpPlatform } from './bootstrap.js';
import { loadAppConfig } from './config/app-config.js';

const config = loadAppConfig(process.env);
const platform: HttpPlatform = process.env.HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express';
const app = await createPaymentsApp(config, platform);
await app.listen(config.port, '127.0.0.1');
new Logger('PaymentsApi').log(
  `listening on http://127.0.0.1:${config.port} (${platform}, ${config.databaseUrl ? 'MySQL' : `SQLite ${config.sqlitePath}`}, ` +
    `atomic mode ${config.atomic ? 'on' : 'off: it needs MySQL/MariaDB'})`,
);
