/**
 * `--help`, spawned with the real compiled binary: every command `bgtasks --help` lists prints its
 * usage and exits 0. Pure argument parsing: it runs once, not per database.
 */
import { expect } from 'chai';
import { makeProject, runCli, type Project } from '../helpers/project.js';
import { expectCode } from '../helpers/cli-suite.js';

describe('bgtasks --help, spawned', function () {
  this.timeout(60_000);
  let project: Project;
  before(() => {
    project = makeProject();
  });
  after(() => project.remove());

  it('<command> --help exits 0 with a usage naming the command, for every command `bgtasks --help` lists', async () => {
    const top = await runCli(['--help'], project.dir);
    expectCode(top, 0);
    const section = /\nCommands:\n([\s\S]*?)\n\n/.exec(top.stdout);
    expect(section, top.stdout).to.not.equal(null);
    // An entry starts two spaces in; its wrapped description lines are indented further.
    const commands = section![1]!
      .split('\n')
      .map((l) => /^ {2}([a-z][\w-]*)\b/.exec(l)?.[1])
      .filter((c): c is string => c !== undefined);
    expect(commands).to.include.members(['process-tasks', 'migrate', 'schedules', 'list', 'prune-results']);
    expect(new Set(commands).size).to.equal(commands.length);

    const runs = await Promise.all(commands.map((c) => runCli([c, '--help'], project.dir)));
    runs.forEach((r, i) => {
      const c = commands[i]!;
      expectCode(r, 0);
      expect(r.stderr, c).to.equal('');
      if (c === 'help') {
        // Commander's own help command: its --help is the program's usage, which lists it.
        expect(r.stdout, c).to.match(/^Usage: bgtasks \[options\] \[command\]\n/);
        expect(r.stdout, c).to.match(/\n {2}help \[command\]\s/);
      } else {
        expect(r.stdout, c).to.match(new RegExp(`^Usage: bgtasks ${c} `));
        expect(r.stdout, c).to.match(/\n {2}-h, --help\s/);
      }
    });
  });
});
