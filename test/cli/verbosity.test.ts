/**
 * The log-level flags of process-tasks, spawned with the real compiled binary: `-v` and `-q`
 * together are a usage error (checked once: pure argument parsing), and on SQLite (the project's
 * default file) and, when configured, MariaDB and PostgreSQL, `-v` adds the task's debug lines
 * (and the worker's `task started`) and `-q` drops the info lines but keeps warnings. At the
 * default level the worker writes one line of its own per task: `task succeeded`.
 */
import { expect } from 'chai';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { cliTargets } from '../helpers/record-project.js';
import { readResult } from '../../core/api/results.js';
import { cliSuite, expectCode } from '../helpers/cli-suite.js';

const TASKS = `
import { background } from 'bgtasks';

/** One line at each level through the task's own logger. */
export const chatty = background({ name: 'chatty', context: true }, async function chatty(ctx: any, tag: string) {
  ctx.log.debug('chatty debug line', { tag });
  ctx.log.info('chatty info line', { tag });
  ctx.log.warn('chatty warn line', { tag });
  return tag;
});
`;

/** The log lines of a human-format worker output at `level` (e.g. "DEBUG", "INFO"). */
function linesAt(stdout: string, level: string): string[] {
  return stdout.split('\n').filter((l) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${level}\\s`).test(l));
}

describe('bgtasks -v and -q flag parsing, spawned', function () {
  this.timeout(60_000);
  let project: Project;
  before(() => {
    project = makeProject();
  });
  after(() => project.remove());

  it('-v with -q (or --verbose with --quiet) is a usage error: exit 2, one line naming both flags', async () => {
    const runs = await Promise.all([
      runCli(['process-tasks', '--batch', '-v', '-q'], project.dir),
      runCli(['process-tasks', '--batch', '--verbose', '--quiet'], project.dir),
    ]);
    for (const r of runs) {
      expectCode(r, 2);
      expect(r.stderr).to.match(/^bgtasks: .*--verbose.*--quiet.*\n$/);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stdout).to.equal('');
    }
  });
});

for (const t of cliTargets()) {
  describe(`bgtasks -v and -q, spawned [${t.name}]`, function () {
    this.timeout(60_000);
    const suite = cliSuite(t, TASKS);
    const { cli, enqueue, migrated } = suite;

    it('-v adds the debug lines the default level hides; -q keeps warnings but no info lines', async () => {
      await migrated();
      const ids = {
        normal: await enqueue('chatty', ['normal'], 'q-normal'),
        verbose: await enqueue('chatty', ['verbose'], 'q-verbose'),
        quiet: await enqueue('chatty', ['quiet'], 'q-quiet'),
      };
      const [normal, verbose, quiet] = await Promise.all([
        cli('process-tasks', '--batch', '--queue', 'q-normal'),
        cli('process-tasks', '--batch', '--queue', 'q-verbose', '-v'),
        cli('process-tasks', '--batch', '--queue', 'q-quiet', '-q'),
      ]);
      for (const r of [normal, verbose, quiet]) {
        expectCode(r, 0);
        expect(r.stderr).to.equal('');
      }
      for (const id of Object.values(ids)) expect((await readResult(suite.store, id)).status).to.equal('SUCCESSFUL');

      expect(linesAt(normal.stdout, 'DEBUG'), normal.stdout).to.deep.equal([]);
      expect(linesAt(normal.stdout, 'INFO').join('\n')).to.match(new RegExp(`chatty info line .*id=${ids.normal} name=chatty tag=normal`));
      // One line of the worker's own per task at info: its end, not its start.
      const own = linesAt(normal.stdout, 'INFO').filter((l) => l.includes(` id=${ids.normal} `) && !/chatty info line/.test(l));
      expect(own, normal.stdout).to.have.length(1);
      expect(own[0]).to.match(new RegExp(`INFO {2}task succeeded .*id=${ids.normal} name=chatty .*outcome=succeeded`));

      const debug = linesAt(verbose.stdout, 'DEBUG');
      expect(debug, verbose.stdout).to.have.length(2);
      expect(debug[0]).to.match(new RegExp(`DEBUG task started .*id=${ids.verbose} name=chatty queue=q-verbose attempt=1$`));
      expect(debug[1]).to.match(new RegExp(`DEBUG chatty debug line .*id=${ids.verbose} name=chatty tag=verbose$`));
      expect(linesAt(verbose.stdout, 'INFO').join('\n')).to.match(/chatty info line .*tag=verbose/);

      expect(linesAt(quiet.stdout, 'INFO'), quiet.stdout).to.deep.equal([]);
      expect(linesAt(quiet.stdout, 'DEBUG'), quiet.stdout).to.deep.equal([]);
      expect(linesAt(quiet.stdout, 'WARN').join('\n')).to.match(new RegExp(`chatty warn line .*id=${ids.quiet} name=chatty tag=quiet`));
      // The default level writes the info lines -q drops.
      expect(linesAt(normal.stdout, 'INFO').join('\n')).to.match(/worker started[\s\S]*worker stopped/);
    });
  });
}
