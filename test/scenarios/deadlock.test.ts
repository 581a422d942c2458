/**
 * Scenario DEADLOCK-01 (docs/scenarios.md) on a private MariaDB: a real InnoDB deadlock (error
 * 1213) between a worker's lease renewal of two tasks and another client's transaction on the same
 * task rows, provoked in the order that makes the renewal the victim. The store must retry it and
 * renew both leases; the other client's transaction must go through untouched.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { settingsFor } from '../helpers/databases.js';
import { leftovers, mariadbAvailable, skipUnless, startPrivateMariadb, type PrivateMariadb } from '../helpers/private-servers.js';
import { pollUntil } from '../helpers/processes.js';
import { claimReq, LEASE_MS, newTask, T0 } from '../helpers/store-fixtures.js';
import { closeConnections } from '../../core/store/connection.js';
import { runMigrations } from '../../core/store/migrate.js';
import { forgetStores, storeFor } from '../../core/store/open.js';
import type { Store } from '../../core/store/store.js';

describe('scenarios on a private server [mariadb]: deadlocks', function () {
  this.timeout(120_000);
  let server: PrivateMariadb | undefined;
  let store: Store;
  let other: mysql.Connection | undefined;
  let dir: string | undefined;

  before(async function () {
    this.timeout(120_000);
    skipUnless(this, mariadbAvailable(), 'DEADLOCK-01');
    server = await startPrivateMariadb();
    dir = mkdtempSync(path.join(os.tmpdir(), 'bgtasks-deadlock-'));
    store = await storeFor(await settingsFor(server.url, 'dl_', dir));
    await runMigrations(store.conn, 'dl_');
    other = await mysql.createConnection(server.url);
    other.on('error', () => {});
    // Its weight: InnoDB rolls back the transaction that changed fewer rows, so this one survives.
    await other.query('CREATE TABLE weight (n int NOT NULL) ENGINE=InnoDB');
  });
  after(async function () {
    this.timeout(60_000);
    other?.destroy();
    forgetStores();
    await closeConnections();
    await server?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(leftovers()).to.deep.equal([]);
  });

  it('DEADLOCK-01: error 1213 on the task table, a lease renewal of two tasks chosen as the victim, is retried and renews both leases', async () => {
    await store.insertTasks([newTask(), newTask()]);
    const claimed = (await store.claim(claimReq({ limit: 2 }))).sort((a, b) => Number(a.id) - Number(b.id));
    expect(claimed).to.have.length(2);
    const [first, second] = claimed as [(typeof claimed)[0], (typeof claimed)[0]];
    const tasks = store.tables.tasks;

    await other!.query('BEGIN');
    await other!.query(`INSERT INTO weight (n) SELECT seq FROM seq_1_to_500`);
    await other!.query(`UPDATE ${tasks} SET priority = priority WHERE id = ?`, [second.id]);
    // The renewal updates the rows in id order: it locks the first, then waits for the second.
    let settled: string | null = null;
    const renewal = store.heartbeat('worker-a', claimed, T0 + 2 * LEASE_MS).then(
      (r) => ((settled = `returned ${JSON.stringify(r)}`), { ok: true as const, r }),
      (err: unknown) => ((settled = `failed: ${String(err)}`), { ok: false as const, err }),
    );
    let trx: unknown[] = [];
    try {
      await pollUntil(
        async () => {
          // The renewal cannot end before the other client commits; if it did, the wait below is moot.
          if (settled !== null) return true;
          trx = await server!.query(`SELECT trx_id, trx_state, trx_query FROM information_schema.INNODB_TRX`, [], 'mysql');
          return trx.some((r) => (r as { trx_state: string }).trx_state === 'LOCK WAIT');
        },
        'the renewal to wait for the second task’s row lock',
        30_000,
        10,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; transactions: ${JSON.stringify(trx)}`, { cause: err });
    }
    expect(settled, 'the renewal ended while the other client held the second row').to.equal(null);
    // Closes the cycle: this waits for the first row, which the renewal holds.
    await other!.query(`UPDATE ${tasks} SET priority = priority WHERE id = ?`, [first.id]);
    await other!.query('COMMIT');

    const outcome = await renewal;
    expect(outcome.ok, outcome.ok ? '' : `the renewal failed: ${String((outcome as { err: unknown }).err)}`).to.equal(true);
    if (outcome.ok) expect(outcome.r.lost).to.deep.equal([]);
    const [status] = await server!.query<{ Status: string }>('SHOW ENGINE INNODB STATUS', [], 'mysql');
    const latest = /LATEST DETECTED DEADLOCK([\s\S]*?)\n-{5,}\nTRANSACTIONS/.exec(status!.Status)?.[1] ?? '';
    expect(latest, 'the deadlock InnoDB reports').to.include(tasks).and.to.include('locked_until');
    // The victim InnoDB names is the renewal (the other client's statements all went through).
    const victim = /WE ROLL BACK TRANSACTION \((\d)\)/.exec(latest)?.[1];
    expect(victim, latest).to.be.a('string');
    const victimSection = latest.split(/\*\*\* \(\d\) TRANSACTION:/)[Number(victim)] ?? '';
    expect(victimSection, latest).to.include('locked_until');
    const rows = (await store.knex(tasks).select('id', 'locked_until', 'locked_by').orderBy('id')) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [String(r.id), Number(r.locked_until), r.locked_by])).to.deep.equal([
      [first.id, T0 + 2 * LEASE_MS, 'worker-a'],
      [second.id, T0 + 2 * LEASE_MS, 'worker-a'],
    ]);
  });
});
