import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { databaseUrlFrom } from '../broker.js';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, InvalidRequest } from '../errors.js';
import { providerKinds } from '../providers/registry.js';
import { Database } from '../store/database.js';
import { migrate } from '../store/migrate.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * `latchkey migrate (--database-url-file PATH | --config FILE)`: applies the
 * schema migrations and exits. In production it runs as the owner role (the
 * Helm chart's pre-install/pre-upgrade Job) so the replicas can run as a role
 * without DDL rights. The owner's URL comes from `--database-url-file` (no
 * config needed), else from the config's `database` section. Prints the
 * schema version.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('migrate', args, { config: { type: 'string' }, 'database-url-file': { type: 'string' } });
  const urlFile = values['database-url-file'] as string | undefined;
  let url: string | undefined;
  if (urlFile) {
    try {
      url = readFileSync(resolve(io.cwd, urlFile), 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`--database-url-file: cannot read ${urlFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    const path = (values['config'] as string | undefined) ?? io.env['LATCHKEY_CONFIG'];
    if (!path) throw new InvalidRequest('latchkey migrate needs --database-url-file PATH or --config FILE (or LATCHKEY_CONFIG)');
    const config = loadConfigFile(resolve(io.cwd, path), providerKinds);
    url = databaseUrlFrom(config, io.env);
    if (!url) throw new ConfigError(`latchkey migrate: no database: pass --database-url-file, or set ${config.database.url_env} or database.url_file`);
  }
  const db = new Database(url, 1);
  try {
    const result = await migrate(db);
    io.stdout.write(`schema at version ${result.version}${result.applied.length ? ` (applied ${result.applied.join(', ')})` : ' (nothing to apply)'}\n`);
    return 0;
  } finally {
    await db.close();
  }
};
