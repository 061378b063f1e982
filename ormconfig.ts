import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadAppConfig } from './src/config/app-config.js';
import { dataSourceOptions } from './src/database/data-source-options.js';

/** The example API's DataSource, for the TypeORM CLI: `npx typeorm migration:run -d dist/ormconfig.js`. */
const config = loadAppConfig(process.env);
export default new DataSource(dataSourceOptions(config.databaseUrl, config.sqlitePath));
