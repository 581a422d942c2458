/**
 * Self-tests of the fault-scenario helpers: private PostgreSQL and MariaDB servers (restart, crash
 * and recovery, killed connections), pgbouncer in transaction mode, and network-namespace hosts
 * that can be cut off and healed; each suite ends by checking that destroy() leaves no process,
 * temp dir, shared memory or namespace behind. A suite whose binaries or capabilities are missing
 * prints a NOTICE and is skipped (pending, never passed).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { anyAlive, procStat, treeOf, type ProcStat } from '../helpers/leftovers.js';
import { createNetHosts, netnsAvailable, type NetHosts } from '../helpers/netns.js';
import { pgbouncerAvailable, startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.js';
import {
  leftovers,
  mariadbAvailable,
  postgresAvailable,
  skipUnless,
  startPrivateMariadb,
  startPrivatePostgres,
  type PrivateMariadb,
  type PrivatePostgres,
} from '../helpers/private-servers.js';
import { REPO } from '../helpers/project.js';

/** The server's processes now (the postmaster and its backends, or mariadbd). */
function processesOf(pid: number | null): ProcStat[] {
  expect(pid, 'the server is running').to.be.a('number');
  return treeOf({ pid: pid!, startTime: procStat(pid!)!.startTime });
}

function sysvSegmentExists(id: number): boolean {
  return readFileSync('/proc/sysvipc/shm', 'utf8')
    .split('\n')
    .slice(1)
    .some((l) => Number(l.trim().split(/\s+/)[1]) === id);
}

/** A pg client whose connection errors are recorded instead of crashing the process. */
async function pgClient(url: string, applicationName = 'bgtasks-infra-test'): Promise<pg.Client & { errors: Error[] }> {
  const c = Object.assign(new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 5_000 }), { errors: [] as Error[] });
  c.on('error', (err) => c.errors.push(err));
  await c.connect();
  return c;
}

let started = 0;

describe('fault-scenario infrastructure: private PostgreSQL', function () {
  let server: PrivatePostgres | undefined;
  const clients: pg.Client[] = [];

  before(async function () {
    this.timeout(90_000);
    skipUnless(this, postgresAvailable(), 'the private PostgreSQL self-tests');
    server = await startPrivatePostgres();
    started++;
  });
  after(async function () {
    this.timeout(60_000);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    await server?.destroy();
  });

  it('serves a `test` database from its own data dir on its own loopback port', async () => {
    expect(server!.url).to.match(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/test$/);
    expect(server!.port).to.not.equal(5432);
    const c = await pgClient(server!.url);
    clients.push(c);
    const row = (await c.query('SELECT current_database() AS db, current_setting($1) AS data, current_user AS who', ['data_directory'])).rows[0];
    expect(row).to.deep.equal({ db: 'test', data: server!.dataDir, who: 'postgres' });
  });

  it('restart(): a client connected before gets an error, a new one reads the data written before', async function () {
    this.timeout(30_000);
    const before = await pgClient(server!.url);
    clients.push(before);
    await before.query('CREATE TABLE restarted (n int)');
    await before.query('INSERT INTO restarted VALUES (1)');
    const pidBefore = server!.pid;
    await server!.restart();
    expect(server!.pid).to.be.a('number').and.not.equal(pidBefore);
    let failure: Error | null = null;
    await before.query('SELECT 1').catch((err: Error) => (failure = err));
    expect(failure, 'a query on the connection from before the restart').to.be.an('error');
    const after = await pgClient(server!.url);
    clients.push(after);
    expect((await after.query('SELECT n FROM restarted')).rows).to.deep.equal([{ n: 1 }]);
  });

  it('kill() is a crash: every server process is gone at once, and start() recovers committed rows', async function () {
    this.timeout(30_000);
    const c = await pgClient(server!.url);
    clients.push(c);
    await c.query('CREATE TABLE crashed (n int)');
    await c.query('INSERT INTO crashed VALUES (7)');
    const procs = processesOf(server!.pid);
    expect(procs.length, 'postmaster and backends').to.be.greaterThan(2);
    await server!.kill();
    expect(server!.running).to.equal(false);
    expect(anyAlive(procs), 'a server process survived kill()').to.equal(false);
    await server!.start();
    expect(server!.logTail(40)).to.match(/not properly shut down; automatic recovery in progress/);
    const again = await pgClient(server!.url);
    clients.push(again);
    expect((await again.query('SELECT n FROM crashed')).rows).to.deep.equal([{ n: 7 }]);
  });

  it('terminateBackends(name) ends only the backends with that application_name; their client gets an error', async () => {
    const victim = await pgClient(server!.url, 'victim');
    const bystander = await pgClient(server!.url, 'bystander');
    clients.push(victim, bystander);
    const victimPid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const ended = await server!.terminateBackends('victim');
    expect(ended.map((b) => [b.pid, b.applicationName])).to.deep.equal([[victimPid, 'victim']]);
    let failure: Error | null = null;
    await victim.query('SELECT 1').catch((err: Error) => (failure = err));
    expect(failure, 'a query on the terminated connection').to.be.an('error');
    expect((await bystander.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    const remaining = await server!.backends((b) => b.applicationName === 'victim' || b.applicationName === 'bystander');
    expect(remaining.map((b) => b.applicationName)).to.deep.equal(['bystander']);
  });

  it('destroy() after a crash leaves no process, temp dir or shared memory behind', async function () {
    this.timeout(30_000);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    const procs = processesOf(server!.pid);
    const shmId = Number(readFileSync(path.join(server!.dataDir, 'postmaster.pid'), 'utf8').split('\n')[6]!.trim().split(/\s+/)[1]);
    expect(sysvSegmentExists(shmId), `SysV segment ${shmId} while running`).to.equal(true);
    await server!.kill();
    expect(sysvSegmentExists(shmId), 'a crash leaves the segment').to.equal(true);
    await server!.destroy();
    expect(anyAlive(procs)).to.equal(false);
    expect(existsSync(server!.dir)).to.equal(false);
    expect(sysvSegmentExists(shmId), `SysV segment ${shmId} after destroy`).to.equal(false);
  });
});

describe('fault-scenario infrastructure: private MariaDB', function () {
  let server: PrivateMariadb | undefined;
  const conns: mysql.Connection[] = [];
  const connect = async (): Promise<mysql.Connection> => {
    const c = await mysql.createConnection(server!.url);
    c.on('error', () => {});
    conns.push(c);
    return c;
  };

  before(async function () {
    this.timeout(90_000);
    skipUnless(this, mariadbAvailable(), 'the private MariaDB self-tests');
    server = await startPrivateMariadb();
    started++;
  });
  after(async function () {
    this.timeout(60_000);
    for (const c of conns.splice(0)) c.destroy();
    await server?.destroy();
  });

  it('serves a `test` database from its own data dir on its own loopback port, as root without a password', async () => {
    expect(server!.url).to.match(/^mysql:\/\/root@127\.0\.0\.1:\d+\/test$/);
    expect(server!.port).to.not.equal(3306);
    const c = await connect();
    const [rows] = await c.query('SELECT DATABASE() AS db, @@datadir AS data, @@character_set_server AS cs');
    expect(rows).to.deep.equal([{ db: 'test', data: server!.dataDir + '/', cs: 'utf8mb4' }]);
  });

  it('restart(): a client connected before gets an error, a new one reads the data written before', async function () {
    this.timeout(30_000);
    const before = await connect();
    await before.query('CREATE TABLE restarted (n int) ENGINE=InnoDB');
    await before.query('INSERT INTO restarted VALUES (1)');
    const pidBefore = server!.pid;
    await server!.restart();
    expect(server!.pid).to.be.a('number').and.not.equal(pidBefore);
    let failure: Error | null = null;
    await before.query('SELECT 1').catch((err: Error) => (failure = err));
    expect(failure, 'a query on the connection from before the restart').to.be.an('error');
    const [rows] = await (await connect()).query('SELECT n FROM restarted');
    expect(rows).to.deep.equal([{ n: 1 }]);
  });

  it('kill() is a crash, and start() recovers committed rows', async function () {
    this.timeout(30_000);
    const c = await connect();
    await c.query('CREATE TABLE crashed (n int) ENGINE=InnoDB');
    await c.query('INSERT INTO crashed VALUES (7)');
    const procs = processesOf(server!.pid);
    await server!.kill();
    expect(anyAlive(procs), 'mariadbd survived kill()').to.equal(false);
    await server!.start();
    expect(server!.logTail(60)).to.match(/crash recovery/i);
    const [rows] = await (await connect()).query('SELECT n FROM crashed');
    expect(rows).to.deep.equal([{ n: 7 }]);
  });

  it('killConnections(filter) ends only the matching connections; their client gets an error', async () => {
    const victim = await connect();
    const bystander = await connect();
    const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    const ended = await server!.killConnections((c) => c.id === Number(id));
    expect(ended.map((c) => [c.id, c.clientAddr])).to.deep.equal([[Number(id), '127.0.0.1']]);
    let failure: Error | null = null;
    await victim.query('SELECT 1').catch((err: Error) => (failure = err));
    expect(failure, 'a query on the killed connection').to.be.an('error');
    const [rows] = await bystander.query('SELECT 1 AS one');
    expect(rows).to.deep.equal([{ one: 1 }]);
  });

  it('destroy() leaves no process or temp dir behind', async function () {
    this.timeout(30_000);
    for (const c of conns.splice(0)) c.destroy();
    const procs = processesOf(server!.pid);
    await server!.destroy();
    expect(anyAlive(procs)).to.equal(false);
    expect(existsSync(server!.dir)).to.equal(false);
  });
});

describe('fault-scenario infrastructure: pgbouncer in transaction mode', function () {
  let server: PrivatePostgres | undefined;
  let bouncer: Pgbouncer | undefined;
  const clients: pg.Client[] = [];

  before(async function () {
    this.timeout(90_000);
    skipUnless(this, postgresAvailable(), 'the pgbouncer self-tests (they need a private PostgreSQL)');
    skipUnless(this, pgbouncerAvailable(), 'the pgbouncer self-tests');
    server = await startPrivatePostgres();
    // One server connection: clients can only take turns on it if transactions are pooled.
    bouncer = await startPgbouncer({ upstreamPort: server.port, poolMode: 'transaction', settings: { default_pool_size: 1 } });
    started++;
  });
  after(async function () {
    this.timeout(60_000);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    await bouncer?.destroy();
    await server?.destroy();
  });

  it('three clients query through it, sharing its one server connection between transactions', async () => {
    expect(bouncer!.url).to.match(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/test$/);
    expect(bouncer!.port).to.not.equal(server!.port);
    for (let i = 0; i < 3; i++) clients.push(await pgClient(bouncer!.url));
    const seen = new Set<number>();
    for (const c of clients) {
      const row = (await c.query('SELECT pg_backend_pid() AS pid, current_database() AS db')).rows[0];
      expect(row.db).to.equal('test');
      seen.add(row.pid);
    }
    expect(seen.size, 'server backends used by three clients').to.equal(1);
    const pools = await bouncer!.admin('SHOW POOLS');
    expect(pools.find((p) => p.database === 'test')).to.include({ pool_mode: 'transaction', cl_active: 3 });
    const backends = await server!.backends((b) => b.database === 'test');
    expect(backends).to.have.length(1);
  });

  it('destroy() leaves no process or temp dir behind', async function () {
    this.timeout(30_000);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    const procs = processesOf(bouncer!.pid);
    await bouncer!.destroy();
    expect(anyAlive(procs)).to.equal(false);
    expect(existsSync(bouncer!.dir)).to.equal(false);
  });
});

/** Runs a query from inside a test host: "ok <client address>" or "fail <message>". */
const QUERY_SCRIPT = `
const pg = require(${JSON.stringify(path.join(REPO, 'node_modules', 'pg'))});
const c = new pg.Client({ connectionString: process.argv[1], connectionTimeoutMillis: Number(process.argv[2]) });
c.on('error', () => {});
c.connect()
  .then(() => c.query('SELECT host(inet_client_addr()) AS addr'))
  .then((r) => { console.log('ok ' + r.rows[0].addr); return c.end(); })
  .catch((e) => { console.log('fail ' + e.message); process.exit(0); });
`;

describe('fault-scenario infrastructure: network-namespace hosts', function () {
  let net: NetHosts | undefined;
  let server: PrivatePostgres | undefined;
  const queryFrom = async (host: number, timeoutMs = 2_000) =>
    (await net!.run(host, process.execPath, ['-e', QUERY_SCRIPT, server!.url, String(timeoutMs)], timeoutMs + 10_000)).stdout.trim();

  before(async function () {
    this.timeout(90_000);
    skipUnless(this, postgresAvailable(), 'the network-namespace self-tests (they need a private PostgreSQL)');
    skipUnless(this, netnsAvailable(), 'the network-namespace self-tests');
    net = await createNetHosts(2);
    server = await startPrivatePostgres({ host: net.serverAddress });
    started++;
  });
  after(async function () {
    this.timeout(60_000);
    await server?.destroy();
    await net?.destroy();
  });

  it('each host reaches the database on the bridge address, from its own address', async function () {
    this.timeout(30_000);
    expect(net!.serverAddress).to.match(/^10\.200\.\d+\.1$/);
    expect(server!.url).to.equal(`postgres://postgres@${net!.serverAddress}:${server!.port}/test`);
    for (const h of net!.hosts) expect(await queryFrom(h.index)).to.equal(`ok ${h.address}`);
  });

  it('cut(host) silences that host only (connects time out, not refused); heal(host) brings it back', async function () {
    this.timeout(30_000);
    net!.cut(0);
    expect(net!.isCut(0)).to.equal(true);
    expect(await net!.probeTcp(0, net!.serverAddress, server!.port, 1_000)).to.equal('timeout');
    expect(await queryFrom(0, 1_000)).to.match(/^fail /);
    expect(await queryFrom(1)).to.equal(`ok ${net!.hosts[1]!.address}`);
    net!.heal(0);
    expect(net!.isCut(0)).to.equal(false);
    expect(await queryFrom(0)).to.equal(`ok ${net!.hosts[0]!.address}`);
  });

  it("cut(host, 'down') takes the host's link down; heal(host) brings it back", async function () {
    this.timeout(30_000);
    net!.cut(1, 'down');
    expect(await queryFrom(1, 1_000)).to.match(/^fail /);
    net!.heal(1);
    expect(await queryFrom(1, 5_000)).to.equal(`ok ${net!.hosts[1]!.address}`);
  });

  it('destroy() kills what runs in the hosts and removes the namespaces and links', async function () {
    this.timeout(30_000);
    const sleeper = net!.exec(0, process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    const sleeperProc = procStat(sleeper.pid!)!;
    const names = net!.hosts.map((h) => h.name);
    const links = [...net!.hosts.map((h) => h.hostLink), `bgt${net!.serverAddress.split('.')[2]}br`];
    await server!.destroy();
    await net!.destroy();
    expect(anyAlive([sleeperProc]), 'a process started in a host survived destroy()').to.equal(false);
    for (const n of names) expect(existsSync(`/run/netns/${n}`), n).to.equal(false);
    for (const l of links) expect(existsSync(`/sys/class/net/${l}`), l).to.equal(false);
  });
});

describe('fault-scenario infrastructure: after every suite', function () {
  it('nothing the helpers started or created is left on the machine', function () {
    if (started === 0) {
      process.stdout.write('NOTICE: no infrastructure suite ran here, so there is nothing to check for leftovers (skipped, not passed).\n');
      this.skip();
    }
    expect(leftovers()).to.deep.equal([]);
  });
});
