/**
 * The dashboard in Chromium against the real databases (SQLite, MariaDB, PostgreSQL), through the
 * DatabaseSource: hostile names, queues, arguments, results, errors, schedule keys and worker
 * hosts stored in the database render as text; an action button changes the database and the
 * page; live refresh shows a task inserted meanwhile; keyset pages through a few thousand rows
 * neither skip nor repeat; read-only refuses a forged POST. On SQLite it also takes the
 * screenshots of docs/dashboard.md (docs/images/dashboard-*.png). Waits poll; nothing sleeps.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { DatabaseSource } from '../../core/dashboard/database-source.js';
import { serveDashboard, type DashboardServer } from '../../core/dashboard/index.js';
import { nextCronSlot } from '../../core/policy/cron.js';
import { registerSchedule } from '../../core/store/schedules.js';
import { registerWorker } from '../../core/store/workers.js';
import { taskHash } from '../../core/base/json.js';
import { plainTask, type NewTask } from '../../core/store/rows.js';
import type { ErrorRecord } from '../../core/types.js';
import { withChromium } from '../helpers/browser.js';
import { contract, type TestDatabase } from '../helpers/databases.js';
import { claimOne } from '../helpers/store-fixtures.js';
import { REPO } from '../helpers/project.js';
import { XSS_ATTR, XSS_SCRIPT } from './fixtures.js';

const WAIT = { timeout: 10_000, polling: 100 };
const MIN = 60_000;

declare const window: any;
declare const document: any;

function task(name: string, args: unknown[], extra: Partial<NewTask> = {}): NewTask {
  const text = JSON.stringify(args);
  const now = Date.now();
  return plainTask({ name, args: text, hash: taskHash(name, text), runAt: now - 1000, enqueuedAt: now - 2000, ...extra });
}

function failure(cls: string, message: string, at: number, attempt = 1): ErrorRecord {
  return { class: cls, message, stack: `${cls}: ${message}\n    at handler (/app/tasks.ts:12:9)\n    at run (/app/node_modules/bgtasks/worker.js:40:3)`, attempt, at, workerId: 'web-1:4211' };
}

/** A task through the store's own verbs: stored, claimed by `worker`, and finished or failed. */
async function finish(db: TestDatabase, t: NewTask, how: { ok?: string; fail?: ErrorRecord; at: number; worker?: string }): Promise<string> {
  const runAt = Math.min(t.runAt, how.at - 500);
  const [id] = await db.store.insertTasks([{ ...t, runAt, scheduledAt: runAt, enqueuedAt: Math.min(t.enqueuedAt, runAt - 700) }]);
  const claimed = await claimOne(db, id!, { nowMs: how.at - 400, leaseMs: 60_000, names: [t.name], workerId: how.worker ?? 'web-1:4211' });
  if (how.fail) {
    expect(await db.store.fail(claimed, { nowMs: how.at, record: how.fail, successorAt: null, attempts: 1 })).to.equal(true);
  } else {
    const out = await db.store.completeMany([{ task: claimed, finishedAt: how.at, returnValue: how.ok ?? null, successorAt: null }], how.at);
    expect(out.done).to.have.length(1);
  }
  return id!;
}

contract('dashboard in Chromium on the database', (db) => {
  const browser = withChromium();
  const servers: DashboardServer[] = [];

  beforeEach(async function () {
    this.timeout(30_000);
    await db.reset();
  });
  afterEach(async () => {
    while (servers.length) await servers.pop()?.close();
  });

  async function serve(opts: { readOnly?: boolean; display?: string } = {}): Promise<string> {
    // Counts a second old at most, so the live-refresh test sees an insert within a few refreshes.
    const source = new DatabaseSource({ store: db.store, display: opts.display, countsMaxAgeMs: 1000 });
    const s = await serveDashboard({ source, port: 0, refreshSeconds: 0.5, readOnly: opts.readOnly, logger: { error: () => undefined } });
    servers.push(s);
    return s.url.replace(/\/$/, '');
  }

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const { page, problems } = await browser().newPage();
    const res = await page.goto(url);
    expect(res?.status(), url).to.equal(200);
    return { page, errors: problems.errors };
  }

  it('renders hostile text stored in the database as text on every page, and no script of theirs runs', async function () {
    this.timeout(90_000);
    const now = Date.now();
    const hostileName = `x${XSS_SCRIPT}`;
    const failed = await finish(db, task(hostileName, [XSS_SCRIPT, XSS_ATTR], { queue: XSS_ATTR.slice(0, 150) }), { fail: failure(XSS_SCRIPT, XSS_ATTR, now - MIN), at: now - MIN });
    const ok = await finish(db, task(hostileName, [1]), { ok: JSON.stringify({ html: XSS_SCRIPT }), at: now - 2 * MIN });
    await registerSchedule(db.store, { name: hostileName, key: XSS_ATTR.slice(0, 150), cron: '*/5 * * * *', timezone: 'UTC', args: JSON.stringify([XSS_SCRIPT]), catchUp: 'skip' }, now, XSS_SCRIPT.slice(0, 60));
    await registerWorker(db.store, { id: 'w-hostile', host: XSS_SCRIPT, pid: 7, version: '1', queues: [XSS_ATTR.slice(0, 150)], excludeQueues: null, names: [hostileName], limits: {}, concurrency: 1, startedAt: now - MIN, heartbeatAt: now, heartbeatMs: 60_000, runUntil: null });
    const base = await serve();
    for (const p of ['/', '/tasks', `/tasks/${failed}`, `/tasks/${ok}`, '/failed', '/schedules', '/workers']) {
      const { page, errors } = await open(base + p);
      expect(await page.evaluate(() => window.__xss), p).to.equal(undefined);
      expect(await page.locator('img, main script').count(), p).to.equal(0);
      // The overview names queues only (the hostile one holds the attribute breaker).
      expect(await page.locator('main').innerText(), p).to.contain(p === '/' ? '"><img' : '<script>');
      expect(errors, p).to.deep.equal([]);
      await page.close();
    }
  });

  it('an action changes the database and the page: Run now on a ticked task, Retry on a failed task', async function () {
    this.timeout(60_000);
    const later = Date.now() + 3_600_000;
    const [waiting] = await db.store.insertTasks([task('report.build', ['weekly'], { runAt: later })]);
    const failed = await finish(db, task('mail.send', ['a@example.com']), { fail: failure('SmtpError', 'connection reset', Date.now() - MIN), at: Date.now() - MIN });
    const base = await serve();
    const { page, errors } = await open(`${base}/tasks?status=ready`);
    await page.check(`input[data-select][value="${waiting}"]`);
    await Promise.all([page.waitForURL(`${base}/tasks?status=ready`), page.click('button[name="action"][value="runNow"]')]);
    expect(await page.locator('.flash').innerText()).to.contain('Run now: 1 task moved to now.');
    expect(Number((await db.store.findPending(waiting!))!.runAt)).to.be.at.most(Date.now());
    expect(await page.locator(`tr[data-task-id="${waiting}"]`).innerText()).to.contain('due');

    await page.goto(`${base}/tasks/${failed}`);
    await Promise.all([page.waitForURL(`${base}/tasks/${failed}`), page.click('button[name="action"][value="retry"]')]);
    const flash = await page.locator('.flash').innerText();
    const m = /retried as #(\d+)/.exec(flash);
    expect(m, flash).to.not.equal(null);
    expect((await db.store.findPending(m![1]!))!.name).to.equal('mail.send');
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('live refresh shows a task inserted into the database meanwhile, in place', async () => {
    await db.store.insertTasks([task('live.one', [1])]);
    const base = await serve();
    const { page } = await open(`${base}/`);
    await page.evaluate(() => (window.__marker = 1));
    expect(await page.locator('[data-count="READY"] .value').innerText()).to.equal('1');
    await db.store.insertTasks([task('live.two', [2]), task('live.two', [3])]);
    await page.waitForFunction(() => document.querySelector('[data-count="READY"] .value')?.textContent === '3', null, WAIT);
    expect(await page.evaluate(() => window.__marker)).to.equal(1);
    await page.close();
  });

  it('pages through a few thousand rows with Next and Previous without skipping or repeating a task', async function () {
    this.timeout(120_000);
    const now = Date.now();
    // Equal enqueue times in runs of ten: the id breaks the ties.
    const rows = Array.from({ length: 3000 }, (_, i) => task('bulk.item', [i], { enqueuedAt: now - 10_000_000 + Math.floor(i / 10) * 1000 }));
    for (let i = 0; i < rows.length; i += 500) await db.store.insertTasks(rows.slice(i, i + 500));
    const base = await serve();
    const { page, errors } = await open(`${base}/tasks?limit=100`);
    const ids = () => page.locator('tr[data-task-id]').evaluateAll((trs: any[]) => trs.map((tr) => tr.getAttribute('data-task-id') as string));
    const seen: string[][] = [await ids()];
    for (let i = 0; i < 6; i++) {
      const first = seen[seen.length - 1]![0];
      await page.click('.pager a[rel="next"]');
      // The URL matches /cursor=/ from the second page on: wait for the rows themselves to change.
      await page.waitForFunction((f: string) => document.querySelector('tr[data-task-id]')?.getAttribute('data-task-id') !== f, first, WAIT);
      await page.waitForLoadState('load');
      seen.push(await ids());
    }
    const flat = seen.flat();
    expect(flat).to.have.length(700);
    expect(new Set(flat).size).to.equal(700);
    // Newest first: ids fall monotonically within equal times, and times never rise.
    const numeric = flat.map(Number);
    expect(numeric).to.deep.equal([...numeric].sort((a, b) => b - a));
    await page.click('.pager a[rel="prev"]');
    await page.waitForFunction((first: string) => document.querySelector('tr[data-task-id]')?.getAttribute('data-task-id') === first, seen[5]![0], WAIT);
    expect(await ids()).to.deep.equal(seen[5]);
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('read-only: no action controls, and a forged POST is refused with 403 and changes nothing', async () => {
    const [id] = await db.store.insertTasks([task('ro.task', [1])]);
    const base = await serve({ readOnly: true });
    const { page } = await open(`${base}/tasks`);
    expect(await page.locator('button[name="action"]').count()).to.equal(0);
    const status = await page.evaluate(async (target: string) => {
      const res = await fetch('/actions', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `action=delete&id=${target}` });
      return res.status;
    }, id!);
    expect(status).to.equal(403);
    expect(await db.store.findPending(id!)).to.not.equal(null);
    await page.close();
  });

  if (db.name === 'sqlite') {
    // Into docs/images with BGTASKS_SCREENSHOTS=1 (to update the docs); else into a temporary
    // directory that is removed, so a test run leaves the working tree as it was.
    it('takes the screenshots of docs/dashboard.md from a realistic database', async function () {
      this.timeout(120_000);
      const ids = await realisticData(db);
      const base = await serve({ display: 'sqlite:app.sqlite3' });
      const toDocs = process.env.BGTASKS_SCREENSHOTS === '1';
      const dir = toDocs ? path.join(REPO, 'docs', 'images') : mkdtempSync(path.join(tmpdir(), 'bgtasks-shots-'));
      mkdirSync(dir, { recursive: true });
      try {
        await shoot(base, dir, ids.failedTask);
      } finally {
        if (!toDocs) rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  async function shoot(base: string, dir: string, failedTask: string): Promise<void> {
    const { page } = await open(`${base}/`);
    await page.setViewportSize({ width: 1280, height: 900 });
    const shots: Array<[string, string]> = [
      ['overview', '/'],
      ['tasks', '/tasks'],
      ['task', `/tasks/${failedTask}`],
      ['failed', '/failed'],
      ['schedules', '/schedules'],
      ['workers', '/workers'],
    ];
    for (const [name, p] of shots) {
      await page.goto(base + p);
      await page.screenshot({ path: path.join(dir, `dashboard-${name}.png`), fullPage: false });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/`);
    await page.screenshot({ path: path.join(dir, 'dashboard-phone.png'), fullPage: false });
    await page.close();
    expect(readdirSync(dir).filter((f) => f.startsWith('dashboard-')).sort()).to.deep.equal(
      ['failed', 'overview', 'phone', 'schedules', 'task', 'tasks', 'workers'].map((n) => `dashboard-${n}.png`),
    );
  }
});

/** A day in a small app: two workers, a few queues, an hour of throughput, some failures. */
async function realisticData(db: TestDatabase): Promise<{ failedTask: string }> {
  const now = Date.now();
  const names = ['mail.sendWelcome', 'billing.chargeCard', 'reports.buildDaily', 'images.resize'];
  const queues = ['mail', 'billing', null, 'media'];
  let failedTask = '';
  for (let i = 0; i < 90; i++) {
    const k = i % 4;
    const at = now - Math.floor(((i * 37) % 59) * MIN + (i % 7) * 5000) - 30_000;
    const t = task(names[k]!, [k === 0 ? `user${i}@example.com` : { id: 1000 + i }], { queue: queues[k] ?? null });
    if (i % 9 === 4) {
      const cls = k === 1 ? 'CardDeclinedError' : 'TimeoutError';
      const id = await finish(db, t, { fail: failure(cls, k === 1 ? 'card_declined: insufficient funds' : 'upstream took longer than 30 s', at), at, worker: i % 2 ? 'web-1:4211' : 'web-2:3980' });
      if (k === 1) failedTask = id;
    } else {
      await finish(db, t, { ok: JSON.stringify({ ok: true, ms: 40 + i }), at, worker: i % 2 ? 'web-1:4211' : 'web-2:3980' });
    }
  }
  for (let i = 0; i < 12; i++) await db.store.insertTasks([task(names[i % 4]!, [{ id: 2000 + i }], { queue: queues[i % 4] ?? null, runAt: now + (i % 3) * 600_000, priority: i % 3 === 0 ? 10 : 0 })]);
  const [running] = await db.store.insertTasks([task('reports.buildDaily', [{ day: '2026-12-04' }], { runAt: now - 60_000 })]);
  await claimOne(db, running!, { nowMs: now - 20_000, leaseMs: 3_600_000, names: ['reports.buildDaily'], workerId: 'web-1:4211' });
  for (const [id, host, pid] of [['web-1:4211', 'web-1', 4211], ['web-2:3980', 'web-2', 3980]] as const) {
    await registerWorker(db.store, { id, host, pid, version: '0.1.0', queues: null, excludeQueues: null, names, limits: {}, concurrency: 8, startedAt: now - 3 * 3_600_000, heartbeatAt: now - 2000, heartbeatMs: 10_000, runUntil: null });
  }
  await registerSchedule(db.store, { name: 'reports.buildDaily', key: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', args: '[]', catchUp: 'skip' }, now - 30_000, 'web-1:4211');
  await db.store.insertTasks([task('reports.buildDaily', [], { recurringKey: 'nightly', runAt: nextCronSlot('0 3 * * *', 'Europe/Berlin', now) })]);
  await registerSchedule(db.store, { name: 'billing.chargeCard', key: 'monthly', cron: '0 6 1 * *', timezone: 'America/New_York', args: '[{"plan":"pro"}]', catchUp: 'once' }, now - 30_000, 'web-2:3980');
  return { failedTask };
}
