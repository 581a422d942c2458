/**
 * Process lifecycle of the library in an application: closing connections and enqueuing again.
 * SQLite only: it closes every connection of the process, which the shared contract harness keeps.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { background, closeConnections, configure, getResult, migrate, resetConfiguration } from '../../core/index.js';

const ping = background({ name: 'life.ping' }, function ping(n: number) {
  return n;
});

describe('closing connections', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-life-'));
    configure({ database: `sqlite:${path.join(dir, 'app.sqlite3')}`, tablePrefix: 'life_' });
    await migrate();
  });
  after(async () => {
    await closeConnections();
    resetConfiguration();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets the application enqueue again after closeConnections() (a new connection is opened)', async () => {
    const first = await ping(1);
    await closeConnections();
    const second = await ping(2);
    expect(Number(second.id)).to.be.greaterThan(Number(first.id));
    expect((await getResult(first.id)).status).to.equal('READY');
  });

  it('keeps handles made before closeConnections() working', async () => {
    const ref = await ping(3);
    await closeConnections();
    expect((await ref.refresh()).status).to.equal('READY');
  });
});
