/**
 * `npm start`: the main job on the embedded default database. It migrates the SQLite file,
 * enqueues a handful of the example tasks (due now), runs the real `bgtasks process-tasks` on
 * them until every one has finished (the flaky one retries once, 6 s later), and prints what ran.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { closeConnections, getResult, getSettings, migrate, schedule, setLogger, silentLogger, type TaskRef } from '../core/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');
const out = (s = '') => process.stdout.write(`${s}\n`);

async function main(): Promise<number> {
  // npm start runs in the repository's root: its settings are the defaults (./bgtasks.sqlite3).
  process.chdir(root);
  const settings = await getSettings();
  const applied = await migrate();
  out(`Database: ${settings.database.display}${applied.length ? ` (migrated: ${applied.join(', ')})` : ''}`);

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
    const results = await Promise.all(ids.map((id) => getResult(id)));
    if (results.every((r) => r.isFinished)) break;
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
  for (const id of ids) {
    const r = await getResult(id);
    const result = r.status === 'SUCCESSFUL' ? JSON.stringify(r.returnValue ?? null) : 'null';
    out(`  #${r.id.padEnd(4)} ${r.name.padEnd(14)} ${r.status.padEnd(10)} attempts=${r.attempts}  args=${JSON.stringify(r.args)}  result=${result}`);
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
