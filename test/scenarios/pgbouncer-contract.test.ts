/**
 * Scenario PGBOUNCER-03 (docs/scenarios.md): the store's conformance suite (test/contract/store)
 * runs once more through Debian's PgBouncer in transaction mode, in front of a private PostgreSQL
 * that logs every statement (`log_statement=all`); and the statements that enqueue, claim, renew a
 * lease and settle (success, recurring success, retry, failure) carry no session state: no SET,
 * no session advisory lock, no named prepared statement, no LISTEN. In transaction mode a session
 * is lent to another client after each transaction, so such state would leak to it or be lost.
 * Skipped with a printed notice without PostgreSQL's server binaries or /usr/sbin/pgbouncer.
 * Run alone, this file also runs the store suites on the usual databases (it imports them);
 * `--grep pgbouncer` keeps only its own part.
 */
import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
// The store suites register themselves with contract() when loaded (here or by mocha first).
import '../contract/store/claim.test.js';
import '../contract/store/claim-cursor.test.js';
import '../contract/store/claim-priorities.test.js';
import '../contract/store/insert.test.js';
import '../contract/store/lease.test.js';
import '../contract/store/ops.test.js';
import '../contract/store/recover.test.js';
import '../contract/store/settle.test.js';
import { describeOn, registeredContracts, type ContractTarget } from '../helpers/databases.js';
import { pgbouncerAvailable, startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.js';
import { leftovers, postgresAvailable, skipUnless, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-servers.js';
import { claimReq, errorAt, LEASE_MS, newTask, seed, success, T0 } from '../helpers/store-fixtures.js';

/** A statement that sets or uses session state, at the start of a logged statement. */
const SESSION_STATEMENT = /^(SET|RESET|PREPARE|EXECUTE|DEALLOCATE|DISCARD|LISTEN|UNLISTEN)\b/i;
/** Session-level advisory locks (the `_xact_` ones end with the transaction and are fine). */
const SESSION_LOCK = /pg_(try_)?advisory_lock(_shared)?\s*\(/i;

/** The statements of a PostgreSQL log excerpt (prefix `%m [%p] `): `{ kind, sql }`, continuation lines joined. */
function loggedStatements(log: string): Array<{ kind: string; sql: string }> {
  const out: Array<{ kind: string; sql: string }> = [];
  for (const line of log.split('\n')) {
    const m = /\bLOG:\s+(statement|execute [^:]*):\s?(.*)$/.exec(line);
    if (m) out.push({ kind: m[1]!, sql: m[2]! });
    else if (/^\s/.test(line) && out.length > 0 && !/^\s*$/.test(line)) out[out.length - 1]!.sql += `\n${line}`;
  }
  return out;
}

describe('store contract through pgbouncer in transaction mode [postgres]', function () {
  this.timeout(120_000);
  let server: PrivatePostgres | undefined;
  let bouncer: Pgbouncer | undefined;

  before(async function () {
    this.timeout(120_000);
    skipUnless(this, postgresAvailable(), 'PGBOUNCER-03 (it needs a private PostgreSQL)');
    skipUnless(this, pgbouncerAvailable(), 'PGBOUNCER-03');
    server = await startPrivatePostgres({ settings: { log_statement: 'all', log_line_prefix: "'%m [%p] '" } });
    bouncer = await startPgbouncer({ upstreamPort: server.port, poolMode: 'transaction', settings: { default_pool_size: 4 } });
  });
  after(async function () {
    this.timeout(60_000);
    await bouncer?.destroy();
    await server?.destroy();
    expect(leftovers()).to.deep.equal([]);
  });

  const target: ContractTarget = { name: 'postgres', label: 'PgBouncer', tag: 'postgres via pgbouncer', url: () => bouncer!.url };
  const suites = registeredContracts('store: ');
  it('has the eight store suites to run', () => {
    expect(suites.map((s) => s.title).sort()).to.deep.equal([
      'store: claim',
      'store: insert',
      'store: lease',
      'store: ops',
      'store: recover',
      'store: settle',
      'store: the claim from its cursor',
      'store: the claim split by priority',
    ]);
  });
  for (const suite of suites) describeOn(target, suite);

  describeOn(target, {
    title: 'PGBOUNCER-03: session state',
    extraSettings: {},
    body: (db) => {
      it('PGBOUNCER-03: enqueue, claim, heartbeat and every settle send no SET, session advisory lock, server-side PREPARE or LISTEN', async () => {
        await db.reset();
        const from = statSync(server!.logFile).size;
        const ids = await seed(db, [newTask(), newTask({ repeatEvery: 60 }), newTask(), newTask()]);
        // One row alone takes the single-row insert (four took the multi-row one); it stays unclaimed.
        await db.store.insertTasks([newTask()]);
        const claimed = await db.store.claim(claimReq({ limit: 4 }));
        expect(claimed.map((t) => t.id).sort()).to.deep.equal([...ids].sort());
        const byId = new Map(claimed.map((t) => [t.id, t]));
        const [plain, recurring, retried, failed] = ids.map((id) => byId.get(id)!);
        expect(await db.store.heartbeat('worker-a', claimed, T0 + 2 * LEASE_MS)).to.deep.equal({ lost: [], cancelled: [], retaken: [] });
        const done = await db.store.completeMany([success(plain!, T0 + 1, '1')], T0 + 1);
        expect(done.done).to.have.length(1);
        const doneRecurring = await db.store.completeMany([success(recurring!, T0 + 2, '2', T0 + 60_000)], T0 + 2);
        expect(doneRecurring.done).to.have.length(1);
        expect(await db.store.retry(retried!, T0 + 10_000, errorAt('again', 1, T0 + 3))).to.equal('ok');
        expect(await db.store.fail(failed!, { nowMs: T0 + 4, record: errorAt('no', 1, T0 + 4), successorAt: null, attempts: 1 })).to.equal(true);

        // The server writes its log asynchronously to our reads: wait for the last settle's statement.
        const read = () => readFileSync(server!.logFile).subarray(from).toString('utf8');
        const end = Date.now() + 10_000;
        while (!/completed_tasks/.test(read().split('\n').slice(-50).join('\n')) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        const statements = loggedStatements(read());
        const sqls = statements.map((s) => s.sql);
        // The log holds this test's traffic: the claim, the heartbeat and a settle are in it.
        expect(sqls.some((s) => /FOR UPDATE SKIP LOCKED/i.test(s)), 'the claim is logged').to.equal(true);
        expect(sqls.some((s) => /completed_tasks/i.test(s)), 'a settle is logged').to.equal(true);
        process.stdout.write(`      ${statements.length} statements logged for enqueue, claim, heartbeat and four settles\n`);
        expect(sqls.filter((s) => SESSION_STATEMENT.test(s.trim())), 'session statements').to.deep.equal([]);
        expect(sqls.filter((s) => SESSION_LOCK.test(s)), 'session advisory locks').to.deep.equal([]);
        // Named prepared statements live in the server session; the driver's unnamed ones do not.
        expect(statements.filter((s) => s.kind.startsWith('execute') && s.kind !== 'execute <unnamed>'), 'named prepared statements').to.deep.equal([]);
      });
    },
  });
});
