/**
 * The random start-up delay of process-tasks, spawned with the real compiled binary. A worker that
 * waits says so in a debug line (`start-up delay ms=…`), so the rule is checked by what the worker
 * says, not by timing it: `--batch` does not wait unless `--startup-delay` asks; a `--duration`
 * run off a terminal (cron's case) waits; the same run on a terminal (`script` gives it one, as a
 * user's shell would) does not; `--no-startup-delay` never waits. On SQLite only: the rule is
 * about how the command was started, and no statement of it differs by database.
 */
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { CLI, childEnv, makeProject, runCli, type Project, type RunResult } from '../helpers/project.js';
import { expectCode } from '../helpers/cli-suite.js';

const TASKS = `
import { background } from 'bgtasks';
export const noop = background(function noop() { return 1; });
`;

const WAITED = /DEBUG start-up delay .*ms=\d+/;

/** `bgtasks <args>` under `script`, which runs it on a pseudo-terminal (stdin and stdout a TTY). */
function runOnTerminal(args: string[], cwd: string): Promise<RunResult> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    // stdin stays open (a pipe): script ends the session when its own input ends.
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: stdout.replace(/\r\n/g, '\n'), stderr }));
  });
}

describe('process-tasks start-up delay, spawned [sqlite]', function () {
  this.timeout(60_000);
  let project: Project;
  before(async () => {
    project = makeProject({ 'tasks.ts': TASKS });
    expectCode(await runCli(['migrate'], project.dir), 0);
  });
  after(() => project.remove());

  it('--batch does not wait; --batch --startup-delay does', async () => {
    const [plain, asked] = await Promise.all([
      runCli(['process-tasks', '--batch', '-v'], project.dir),
      runCli(['process-tasks', '--batch', '-v', '--startup-delay'], project.dir),
    ]);
    expectCode(plain, 0);
    expectCode(asked, 0);
    expect(plain.stdout).to.match(/worker stopped/);
    expect(plain.stdout).not.to.match(WAITED);
    expect(asked.stdout).to.match(WAITED);
  });

  it('--duration off a terminal waits; --no-startup-delay does not', async () => {
    const args = ['process-tasks', '--duration', '0.2', '--sleep', '0.05', '--grace', '1', '-v'];
    const [cron, skipped] = await Promise.all([runCli(args, project.dir), runCli([...args, '--no-startup-delay'], project.dir)]);
    expectCode(cron, 0);
    expectCode(skipped, 0);
    expect(cron.stdout).to.match(WAITED);
    expect(skipped.stdout).to.match(/worker stopped/);
    expect(skipped.stdout).not.to.match(WAITED);
  });

  it('--duration typed on a terminal does not wait', async () => {
    const r = await runOnTerminal(['process-tasks', '--duration', '0.2', '--sleep', '0.05', '--grace', '1', '-v'], project.dir);
    expectCode(r, 0);
    expect(r.stdout).to.match(/worker stopped/);
    expect(r.stdout).not.to.match(WAITED);
  });
});
