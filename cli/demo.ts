/**
 * `npm start`: the main job on the embedded default database. It migrates the SQLite file,
 * enqueues a handful of the example tasks (due now), runs the real `bgtasks process-tasks` on
 * them until every one has finished (the flaky one retries once, 6 s later), and prints what ran.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolveSettings } from '../core/config/settings.js';
import { closeConnections } from '../core/store/connection.js';
import { runMigrations } from '../core/store/migrate.js';
import { schedule } from '../core/api/schedule.js';
import { reachableStore } from '../core/store/open.js';
import { setLogger, silentLogger } from '../core/base/log.js';
import type { TaskRef } from '../core/types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const out = (s = '') => process.stdout.write(`${s}\n`);

async function main(): Promise<number> {
  const settings = await resolveSettings({ cwd: root });
  const store = await reachableStore(settings);
  const applied = await runMigrations(store.conn, settings.tablePrefix);
  out(`Database: ${store.conn.spec.display}${applied.length ? ` (migrated: ${applied.join(', ')})` : ''}`);

  setLogger(silentLogger);
  const { tsImport } = await import('tsx/esm/api');
  const tasks = (await tsImport(pathToFileURL(path.join(root, 'tasks.example.ts')).href, import.meta.url)) as typeof import('../tasks.example.js');
  const refs: TaskRef[] = [
    await tasks.notifyUser(7, 'Your report is ready', schedule(0)),
    await tasks.notifyUser(8, 'Welcome aboard', schedule(0, { priority: 5 })),
    await tasks.syncInventory('berlin'),
    await tasks.resizeImage('photos/cat.png', 320),
    await tasks.resizeImage('photos/dog.jpg', 640),
  ];
  out(`Enqueued ${refs.length} tasks: ${refs.map((r) => `${r.name}#${r.id}`).join(', ')}`);
  out('Running: bgtasks process-tasks --task-files tasks.example.ts --sleep 0.5 (until all of them finish)\n');

  const worker = spawn(process.execPath, [cli, 'process-tasks', '--task-files', 'tasks.example.ts', '--sleep', '0.5', '--no-startup-delay'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number>((resolve) => worker.on('exit', (code) => resolve(code ?? 1)));
  const deadline = Date.now() + 60_000;
  const ids = refs.map((r) => r.id);
  for (;;) {
    const [{ n }] = (await store.knex(store.tables.completed).whereIn('task_id', ids).count({ n: '*' })) as Array<{ n: unknown }>;
    if (Number(n) === ids.length) break;
    if (Date.now() > deadline) {
      worker.kill('SIGTERM');
      await exited;
      out('\nNot every task finished within 60 s.');
      return 1;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  out('\nAll of them finished: stopping the worker with SIGTERM, as a deploy or Ctrl+C would (it logs that as a WARN line).');
  worker.kill('SIGTERM');
  const code = await exited;

  out('\nWhat ran:');
  const rows = (await store.knex(store.tables.completed).whereIn('task_id', ids).orderBy('task_id')) as Array<Record<string, unknown>>;
  for (const r of rows) {
    const status = r.failed_at === null ? 'SUCCESSFUL' : 'FAILED';
    out(`  #${String(r.task_id).padEnd(4)} ${String(r.name).padEnd(14)} ${status.padEnd(10)} attempts=${String(r.attempts)}  args=${String(r.args)}  result=${String(r.return_value)}`);
  }
  return code === 0 ? 0 : 1;
}

main()
  .then(async (code) => {
    await closeConnections();
    process.exitCode = code;
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`npm start failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await closeConnections();
    process.exitCode = 1;
  });
