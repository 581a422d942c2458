/**
 * `bgtasks dashboard`: the web dashboard on its own HTTP server, over the database the flags
 * name. Loopback only unless BGTASKS_DASHBOARD_AUTH holds a password (a flag would show it in
 * `ps`). Runs until SIGINT or SIGTERM, then stops listening and exits 0.
 */
import { ConfigError } from '../../core/errors.js';
import { DatabaseSource } from '../../core/dashboard/database-source.js';
import { checkServeOptions, DEFAULT_HOST, DEFAULT_PORT, serveDashboard } from '../../core/dashboard/serve.js';
import { normalizeBasePath } from '../../core/dashboard/dashboard.js';
import { EXIT } from '../exit-codes.js';
import { line } from '../format.js';
import { numberFlag, UsageError } from '../flags.js';
import { openStore, type StoreFlags } from '../open-store.js';

/** Where the password comes from (documented in docs/dashboard.md and docs/cli.md). */
export const AUTH_ENV = 'BGTASKS_DASHBOARD_AUTH';

export interface DashboardFlags extends StoreFlags {
  port?: string;
  host?: string;
  basePath?: string;
  readOnly?: boolean;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export async function dashboardCommand(flags: DashboardFlags): Promise<number> {
  const port = numberFlag(flags.port, '--port', 'a port number from 0 to 65535', (n) => Number.isInteger(n) && n >= 0 && n <= 65535) ?? DEFAULT_PORT;
  const host = flags.host ?? DEFAULT_HOST;
  const auth = process.env[AUTH_ENV] || null;
  const basePath = flags.basePath ?? '/';
  try {
    normalizeBasePath(basePath);
    // Refused before the database is opened: a wrong host is the operator's to fix first.
    checkServeOptions(host, port, auth);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message.replace('dashboard basePath', '--base-path'));
    throw err;
  }
  const { store } = await openStore(flags);
  const source = new DatabaseSource({ store });
  const server = await serveDashboard({ source, host, port, basePath, readOnly: flags.readOnly === true, auth });
  const stopped = untilStopSignal();
  line(`bgtasks dashboard: ${server.url}${flags.readOnly ? ' (read-only)' : ''}${auth ? ' (password from ' + AUTH_ENV + ')' : ''}`);
  line(`database: ${source.describe().database}; stop with Ctrl-C`);
  const sig = await stopped;
  await server.close();
  line(`bgtasks dashboard: stopped (${sig})`);
  return EXIT.OK;
}
