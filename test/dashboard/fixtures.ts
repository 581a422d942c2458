/**
 * Data for the dashboard's tests: a fixed clock, a queue with tasks in every status, a failure
 * history, a worker and a cron schedule; and hostile strings in every field a page shows, to
 * prove they render as text.
 */
import { failure, memTask, MemorySource } from './memory-source.js';

export const NOW = Date.UTC(2030, 0, 2, 3, 30, 0);
const MIN = 60_000;

/** Markup that would run script if it were ever inserted unescaped. */
export const XSS_SCRIPT = '<script>window.__xss = (window.__xss || 0) + 1</script>';
export const XSS_ATTR = '"><img src=x onerror="window.__xss = (window.__xss || 0) + 1">';

export interface Clock {
  now: () => number;
  set(ms: number): void;
}

export function fixedClock(start = NOW): Clock {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms) };
}

/** A queue with READY, RUNNING, SUCCESSFUL and FAILED tasks, a worker and a schedule. */
export function seeded(clock: Clock = fixedClock()): MemorySource {
  const s = new MemorySource(clock.now);
  const now = clock.now();
  s.tasks.push(
    memTask(1, { name: 'sendEmail', queue: 'mail', status: 'READY', at: now - 5 * MIN, runAt: now - 2 * MIN }),
    memTask(2, { name: 'sendEmail', queue: 'mail', status: 'READY', at: now - 4 * MIN, runAt: now + 10 * MIN }),
    memTask(3, { name: 'resize', queue: 'media', status: 'RUNNING', attempts: 1, at: now - 3 * MIN, startedAt: now - 1 * MIN, workerId: 'web-1:42:abc' }),
    memTask(4, { name: 'resize', queue: 'media', status: 'SUCCESSFUL', attempts: 1, at: now - 30 * MIN, finishedAt: now - 20 * MIN, result: '{"ok":true}' }),
    memTask(5, {
      name: 'sendEmail',
      queue: 'mail',
      status: 'FAILED',
      attempts: 3,
      at: now - 50 * MIN,
      finishedAt: now - 10 * MIN,
      errors: [failure('SmtpError', 'timeout', now - 30 * MIN, 1), failure('SmtpError', 'timeout again', now - 10 * MIN, 3)],
    }),
    memTask(6, { name: 'report', queue: null, status: 'FAILED', attempts: 1, at: now - 40 * MIN, finishedAt: now - 5 * MIN, errors: [failure('TypeError', 'x is undefined', now - 5 * MIN)] }),
  );
  s.workerList = {
    alive: [
      {
        id: 'web-1:42:abc',
        host: 'web-1',
        pid: 42,
        version: '0.1.0',
        queues: ['media', 'mail'],
        concurrency: 4,
        startedAt: new Date(now - 60 * MIN),
        lastHeartbeatAt: new Date(now - 5000),
        state: 'alive',
        goneAt: null,
        running: [{ id: '3', name: 'resize', queue: 'media', startedAt: new Date(now - 1 * MIN) }],
      },
    ],
    gone: [
      {
        id: 'web-2:7:def',
        host: 'web-2',
        pid: 7,
        version: '0.1.0',
        queues: null,
        concurrency: 1,
        startedAt: new Date(now - 120 * MIN),
        lastHeartbeatAt: new Date(now - 30 * MIN),
        state: 'lost',
        goneAt: new Date(now - 29 * MIN),
        running: [],
      },
    ],
  };
  s.scheduleList = [
    {
      name: 'nightlyReport',
      key: 'default',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      args: '["full"]',
      catchUp: 'skip',
      lastSlot: new Date(now - 24 * 60 * MIN),
      nextSlot: new Date(now + 60 * MIN),
      pendingTask: { id: '2', status: 'READY', runAt: new Date(now + 10 * MIN) },
      pendingCount: 1,
      lastSeenAt: new Date(now - MIN),
      lastSeenBy: 'web-1:42:abc',
      stale: false,
    },
  ];
  return s;
}

/** Hostile text in every field the pages show. */
export function hostile(clock: Clock = fixedClock()): MemorySource {
  const s = new MemorySource(clock.now);
  const now = clock.now();
  s.tasks.push(
    memTask(66, {
      name: XSS_SCRIPT,
      queue: XSS_ATTR,
      verboseName: XSS_ATTR,
      status: 'FAILED',
      args: JSON.stringify([XSS_SCRIPT, { html: XSS_ATTR }]),
      result: JSON.stringify(XSS_SCRIPT),
      at: now - 10 * MIN,
      finishedAt: now - MIN,
      workerId: XSS_ATTR,
      errors: [{ class: XSS_SCRIPT, message: XSS_ATTR, stack: `${XSS_SCRIPT}\n${XSS_ATTR}`, attempt: 1, at: new Date(now - MIN), workerId: XSS_ATTR }],
    }),
  );
  s.scheduleList = [
    {
      name: XSS_SCRIPT,
      key: XSS_ATTR,
      cron: XSS_SCRIPT,
      timezone: XSS_ATTR,
      args: JSON.stringify([XSS_SCRIPT]),
      catchUp: 'skip',
      lastSlot: null,
      nextSlot: null,
      pendingTask: null,
      pendingCount: 0,
      lastSeenAt: null,
      lastSeenBy: XSS_ATTR,
      stale: false,
    },
  ];
  s.workerList = {
    alive: [
      {
        id: XSS_SCRIPT,
        host: XSS_ATTR,
        pid: 1,
        version: XSS_SCRIPT,
        queues: [XSS_ATTR],
        concurrency: 1,
        startedAt: new Date(now - MIN),
        lastHeartbeatAt: new Date(now),
        state: 'alive',
        goneAt: null,
        running: [{ id: '66', name: XSS_SCRIPT, queue: XSS_ATTR, startedAt: new Date(now - MIN) }],
      },
    ],
    gone: [],
  };
  return s;
}
