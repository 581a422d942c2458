/** Opening connections: what fails before any driver is involved. */
import { expect } from 'chai';
import os from 'node:os';
import path from 'node:path';
import { closeConnections, connect } from '../../core/store/connection.js';
import { parseDatabase } from '../../core/config/database-spec.js';
import { ConfigError } from '../../core/errors.js';

describe('connect', () => {
  after(() => closeConnections());

  it('refuses a SQLite file whose directory does not exist, naming the directory and what to do', async () => {
    const dir = path.join(os.tmpdir(), `bgtasks-no-such-dir-${process.pid}`);
    const spec = parseDatabase(`sqlite:${path.join(dir, 'app.sqlite3')}`, process.cwd(), 'test');
    let err: unknown;
    await connect(spec).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.equal(
      `Cannot open the SQLite database sqlite:${dir}/app.sqlite3: its directory ${dir} does not exist — create it (mkdir -p ${dir}) or set database to a path in an existing directory`,
    );
  });
});
