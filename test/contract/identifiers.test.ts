/**
 * Identifiers compare exactly on every database (issue 15, item 3): task names, queue names,
 * schedule keys, lock keys and worker ids differ when they differ by case, accents or trailing
 * spaces. On MySQL/MariaDB that is migration 003's binary collation; SQLite and PostgreSQL
 * compare exactly already. Also: a worker that claims a row it cannot run does not claim it again
 * at once, and `--batch` ends.
 */
import { expect } from 'chai';
import { background, ConfigError } from '../../core/index.js';
import { Worker } from '../../core/worker/worker.js';
import { unregister } from '../../core/definition/registry.js';
import { collectStats } from '../../core/store/admin.js';
import { findTasks } from '../../core/store/find.js';
import { schemaStatus } from '../../core/store/migrate.js';
import { listSchedules, registerSchedule, enqueueSlot } from '../../core/store/schedules.js';
import { plainTask } from '../../core/store/rows.js';
import type { ClaimRequest } from '../../core/store/store.js';
import * as m003 from '../../migrations/003_exact_identifiers.js';
import { contract, waitUntil, type TestDatabase } from '../helpers/databases.js';
import { recordingLogger } from '../helpers/log.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const T0 = Date.UTC(2030, 4, 1, 12, 0, 0);
const ran: string[] = [];
background({ name: 'noop' }, function noop() {
  ran.push('noop');
});
background({ name: 'ident.mail' }, function identMail(to: string) {
  ran.push(`mail:${to}`);
});
after(() => ['noop', 'ident.mail'].forEach(unregister));

/** Names (and queues) equal to the first under a case-, accent- or pad-insensitive collation. */
const LOOKALIKE_NAMES = ['NOOP', 'noop ', 'nóop'];
const LOOKALIKE_QUEUES = ['MAIL', 'maíl', 'mail '];

async function insert(db: TestDatabase, name: string, extra: { queue?: string | null; runAt?: number } = {}): Promise<string> {
  const [id] = await db.store.insertTasks([plainTask({ name, args: '[]', hash: `${name}|${extra.queue ?? ''}`.padEnd(40, '.').slice(0, 40), runAt: extra.runAt ?? T0, enqueuedAt: T0, queue: extra.queue ?? null })]);
  return id!;
}

const claimReq = (extra: Partial<ClaimRequest>): ClaimRequest => ({
  names: ['noop'],
  queues: null,
  excludeQueues: null,
  ordering: 'DESC',
  workerId: 'w',
  nowMs: T0,
  leaseMs: 60_000,
  limit: 100,
  ...extra,
});

contract('identifiers compare exactly', (db) => {
  const { clock, drain } = manualClockSuite(db, T0, () => {
    ran.length = 0;
  });

  describe('migration 003', () => {
    it('is recorded on every database', async () => {
      expect((await schemaStatus(db.store.conn, db.settings.tablePrefix)).applied).to.include('003_exact_identifiers');
    });

    if (db.name !== 'mysql') return;

    type Col = { t: string; c: string; type: string; nullable: string; dflt: unknown; cs: string | null; co: string | null };
    const columns = async (): Promise<Col[]> => {
      const [rows] = (await db.store.knex.raw(
        `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS dflt,
                CHARACTER_SET_NAME AS cs, COLLATION_NAME AS co
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
        [`${db.settings.tablePrefix.replace(/_/g, '\\_')}%`],
      )) as [Col[]];
      return rows.filter((r) => !r.t.startsWith(`${db.settings.tablePrefix}migrations`));
    };
    const indexes = async (): Promise<unknown[]> => {
      const [rows] = (await db.store.knex.raw(
        `SELECT TABLE_NAME AS t, INDEX_NAME AS i, SEQ_IN_INDEX AS s, COLUMN_NAME AS c, NON_UNIQUE AS u, COLLATION AS o
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
        [`${db.settings.tablePrefix.replace(/_/g, '\\_')}%`],
      )) as [unknown[]];
      return rows;
    };
    const identifierSet = () => new Set(Object.entries(m003.IDENTIFIER_COLUMNS).flatMap(([t, cs]) => cs.map((c) => `${db.settings.tablePrefix}${t}.${c.column}`)));
    const ctx = () => ({ prefix: db.settings.tablePrefix, dialect: db.store.dialect });

    it('gives every identifier column a binary NO PAD collation, and changes nothing else (MySQL/MariaDB)', async () => {
      const [[server]] = (await db.store.knex.raw('SELECT VERSION() AS v')) as [[{ v: string }]];
      const exact = /mariadb/i.test(server.v) ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
      const identifiers = identifierSet();
      const after = await columns();
      const afterIndexes = await indexes();
      // Every text column is either an identifier or one of these free texts.
      const texts = new Set(['verbose_name', 'repeat_cron', 'timezone', 'cron', 'catch_up', 'args', 'last_error', 'errors', 'trace_context', 'return_value', 'host', 'pid_ns', 'version', 'queues', 'exclude_queues', 'names', 'limits']);
      // Identifier columns of later migrations, created with the exact collation from the start.
      const p = db.settings.tablePrefix;
      const later = new Set([`${p}tasks.concurrency_key`, `${p}completed_tasks.concurrency_key`, `${p}queues.name`, `${p}queues.updated_by`, `${p}rate_starts.limiter`, `${p}workers.id`, `${p}tasks.last_error_class`, `${p}completed_tasks.last_error_class`, `${p}tasks.idempotency_key`, `${p}completed_tasks.idempotency_key`]);
      for (const c of after.filter((x) => x.cs !== null)) {
        expect(identifiers.has(`${c.t}.${c.c}`) || later.has(`${c.t}.${c.c}`) || texts.has(c.c), `${c.t}.${c.c} is neither an identifier nor a known text`).to.equal(true);
        if (later.has(`${c.t}.${c.c}`)) expect(c.co, `${c.t}.${c.c}`).to.equal(exact);
      }
      expect(after.filter((c) => identifiers.has(`${c.t}.${c.c}`))).to.have.length(identifiers.size);
      for (const c of after) {
        if (identifiers.has(`${c.t}.${c.c}`)) expect(c.co, `${c.t}.${c.c}`).to.equal(exact);
      }

      await m003.down(db.store.knex, ctx());
      try {
        const before = await columns();
        const [defaults] = (await db.store.knex.raw(
          'SELECT TABLE_NAME AS t, TABLE_COLLATION AS co FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ?',
          [`${db.settings.tablePrefix.replace(/_/g, '\\_')}%`],
        )) as [Array<{ t: string; co: string }>];
        const tableDefault = new Map(defaults.map((d) => [d.t, d.co]));
        for (const c of before) {
          if (identifiers.has(`${c.t}.${c.c}`)) expect(c.co, `${c.t}.${c.c} after down`).to.equal(tableDefault.get(c.t));
        }
        // Type, length, NOT NULL and default exactly as 001/002 made them; only the collation moved.
        const shape = (cols: Col[]) => cols.map(({ t, c, type, nullable, dflt }) => ({ t, c, type, nullable, dflt }));
        expect(shape(after)).to.deep.equal(shape(before));
        for (let i = 0; i < before.length; i++) {
          if (!identifiers.has(`${before[i]!.t}.${before[i]!.c}`)) expect(after[i]).to.deep.equal(before[i]);
        }
        expect(await indexes()).to.deep.equal(afterIndexes);
      } finally {
        await m003.up(db.store.knex, ctx());
      }
      expect(await columns()).to.deep.equal(after);
    });
  });

  describe('names', () => {
    it('a worker registering `noop` does not claim rows named NOOP, "noop " or nóop', async () => {
      const noop = await insert(db, 'noop');
      for (const n of LOOKALIKE_NAMES) await insert(db, n);
      const claimed = await db.store.claim(claimReq({}));
      expect(claimed.map((t) => t.id)).to.deep.equal([noop]);
      expect(await db.store.countReady(claimReq({}), T0)).to.equal(0);
      const unknown = await db.store.unknownReady(['noop'], T0);
      expect([...unknown.keys()].sort()).to.deep.equal([...LOOKALIKE_NAMES].sort());
    });

    it('a batch worker runs only `noop`, leaves the look-alikes untouched and ends', async () => {
      await insert(db, 'noop');
      const ids = [];
      for (const n of LOOKALIKE_NAMES) ids.push(await insert(db, n));
      const summary = await drain({ names: ['noop'] });
      expect(summary).to.include({ succeeded: 1, released: 0, reason: 'batch' });
      expect(ran).to.deep.equal(['noop']);
      for (const id of ids) expect(await db.store.findPending(id)).to.include({ attempts: 0, lockedBy: null, runAt: T0 });
    });

    it('listing by name keeps the look-alikes apart', async () => {
      for (const n of ['noop', ...LOOKALIKE_NAMES]) await insert(db, n);
      const found = await findTasks(db.store, { name: 'noop' }, T0);
      expect(found.pending.map((t) => t.name)).to.deep.equal(['noop']);
    });
  });

  describe('queues', () => {
    it('--queue mail claims only `mail`, not MAIL, maíl or "mail "; --exclude-queues mail claims those', async () => {
      const mail = await insert(db, 'noop', { queue: 'mail' });
      const others = [];
      for (const q of LOOKALIKE_QUEUES) others.push(await insert(db, 'noop', { queue: q }));
      expect(await db.store.countReady(claimReq({ queues: ['mail'] }), T0)).to.equal(1);
      expect((await db.store.claim(claimReq({ queues: ['mail'] }))).map((t) => t.id)).to.deep.equal([mail]);
      const rest = await db.store.claim(claimReq({ excludeQueues: ['mail'] }));
      expect(rest.map((t) => t.id).sort()).to.deep.equal(others.sort());
    });

    it('stats and listings count each queue apart', async () => {
      for (const q of ['mail', ...LOOKALIKE_QUEUES]) await insert(db, 'noop', { queue: q });
      const stats = await collectStats(db.store, T0);
      expect(stats.queues.map((q) => [q.queue, q.READY]).sort()).to.deep.equal(['mail', ...LOOKALIKE_QUEUES].map((q) => [q, 1]).sort());
      expect((await findTasks(db.store, { queue: 'mail' }, T0)).pending.map((t) => t.queue)).to.deep.equal(['mail']);
      expect(await db.store.countPendingInQueue(db.store.knex, 'mail')).to.equal(1);
    });
  });

  describe('schedules, locks and workers', () => {
    it('cron schedules `report` and `Report` are two schedules, and each gets its slot', async () => {
      const decl = (name: string) => ({ name, key: 'default', cron: '0 * * * *', timezone: 'UTC', args: '[]', catchUp: 'skip' });
      await registerSchedule(db.store, decl('report'), T0, 'w');
      await registerSchedule(db.store, decl('Report'), T0, 'w');
      expect((await listSchedules(db.store)).map((s) => s.name).sort()).to.deep.equal(['Report', 'report']);
      const slot = T0 + 3_600_000;
      const a = await enqueueSlot(db.store, 'default', slot, plainTask({ name: 'report', args: '[]', hash: 'a'.repeat(40), runAt: slot, enqueuedAt: T0 }), T0);
      const b = await enqueueSlot(db.store, 'default', slot, plainTask({ name: 'Report', args: '[]', hash: 'b'.repeat(40), runAt: slot, enqueuedAt: T0 }), T0);
      expect(a).to.be.a('string');
      expect(b).to.be.a('string');
    });

    it('lock keys differ by case and trailing spaces', async () => {
      await db.store.tx(async (trx) => {
        for (const k of ['queue:mail', 'queue:MAIL', 'queue:mail ']) await db.store.lockKey(trx, k, T0);
      });
      const keys = (await db.store.knex(db.store.tables.locks).select('key')) as Array<{ key: string }>;
      expect(keys.map((k) => k.key).sort()).to.deep.equal(['queue:MAIL', 'queue:mail', 'queue:mail '].sort());
    });

    it('a heartbeat from worker W1 does not renew the lease of worker w1', async () => {
      await insert(db, 'noop');
      const [task] = await db.store.claim(claimReq({ workerId: 'w1' }));
      await db.store.heartbeat('W1', [task!], T0 + 999_000);
      expect((await db.store.findPending(task!.id))!.lockedUntil).to.equal(T0 + 60_000);
    });
  });

  describe('a row the worker cannot run', () => {
    // `ghost` is in the worker's claim filter but not registered: what a collation mismatch (or
    // a task file changed under a running worker) looks like from inside the worker. A worker
    // refuses to start with such a name, so it is registered for the start and unregistered
    // before the first claim is answered (the claim waits on the database; this does not).
    const withGhost = async (w: Worker): Promise<Worker> => {
      background({ name: 'ghost' }, function ghost() {
        ran.push('ghost');
      });
      try {
        return await w.start(db.settings);
      } finally {
        unregister('ghost');
      }
    };
    it('is claimed once, given back with its attempt and a later run time, and warned about once', async () => {
      const ghost = await insert(db, 'ghost');
      const log = recordingLogger();
      const claims: string[][] = [];
      const original = db.store.claim.bind(db.store);
      db.store.claim = async (req) => {
        const rows = await original(req);
        claims.push(rows.map((r) => r.id));
        return rows;
      };
      const w = await withGhost(new Worker({ sleep: 0.01, logger: log, names: ['noop', 'ghost'] }));
      try {
        await waitUntil(() => log.find('warn', /cannot run/).length > 0, 'the warning about the row');
        // Keep polling: 30 more claims (any outcome) after the row was given back.
        const mark = claims.length;
        await waitUntil(() => claims.length >= mark + 30, '30 more claim polls');
      } finally {
        await w.stop(0);
        db.store.claim = original;
      }
      expect(claims.flat().filter((id) => id === ghost)).to.have.length(1);
      const row = (await db.store.findPending(ghost))!;
      expect(row).to.include({ attempts: 0, lockedBy: null });
      expect(row.runAt).to.equal(T0 + 60_000);
      const warn = log.find('warn', /cannot run/);
      expect(warn).to.have.length(1);
      expect(warn[0]!.fields).to.include({ name: 'ghost', id: ghost });
      expect(warn[0]!.fields.registered).to.include('noop').and.not.include('ghost');
    });

    it('a worker refuses to start with a name in `names` that no definition registered, and claims nothing', async () => {
      await insert(db, 'noop');
      const err = await new Worker({ sleep: 0.01, logger: recordingLogger(), names: ['noop', 'ghost'] }).start(db.settings).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/^Invalid names: "ghost" — expected tasks registered in this process \(import the files that define them before the worker starts; registered: .*noop/);
      expect(ran).to.deep.equal([]);
      expect((await db.store.knex(db.store.tables.tasks).whereNotNull('locked_by').count({ n: '*' }).first()) as { n: unknown }).to.satisfy((r: { n: unknown }) => Number(r.n) === 0);
    });

    it('does not keep a batch worker from ending', async () => {
      const ghost = await insert(db, 'ghost');
      await insert(db, 'noop');
      const w = await withGhost(new Worker({ clock, sleep: 0.01, logger: recordingLogger(), names: ['noop', 'ghost'], batch: true }));
      const summary = await w.done;
      expect(summary).to.include({ succeeded: 1, reason: 'batch' });
      expect(ran).to.not.include('ghost');
      expect(await db.store.findPending(ghost)).to.include({ attempts: 0, lockedBy: null, runAt: T0 + 60_000 });
    });
  });
});
