/**
 * Browser tests with Debian's Chromium driven by playwright-core (which downloads no browser).
 * `withChromium()` registers mocha hooks on the calling `describe`: before, it launches Chromium
 * headless with the project's flags and a fresh temporary profile (or prints a NOTICE and skips
 * the block when Chromium is not installed: `apt-get install -y chromium`, as .ci/run does);
 * after, it closes the browser and deletes the profile, whatever happened.
 *
 * Pages opened with `newPage()` record console errors, page errors and CSP violations, so a test
 * can assert that nothing went wrong in the page itself.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.BGTASKS_CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The flags every browser test uses (the developers' guide lists them). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const LAUNCH_TIMEOUT_MS = 30_000;
const ACTION_TIMEOUT_MS = 10_000;

export interface PageProblems {
  /** Console errors (CSP violations among them) and uncaught page errors, in order. */
  errors: string[];
}

export interface ChromiumHandle {
  context: BrowserContext;
  /** A new tab whose console errors and page errors are collected in `problems`. */
  newPage(): Promise<{ page: Page; problems: PageProblems }>;
}

/** Mocha hooks for a describe block; returns a getter valid inside its tests. */
export function withChromium(): () => ChromiumHandle {
  let context: BrowserContext | null = null;
  let profile: string | null = null;

  before(async function () {
    this.timeout(LAUNCH_TIMEOUT_MS + 10_000);
    if (!existsSync(CHROMIUM_PATH)) {
      console.log(`      NOTICE: ${CHROMIUM_PATH} not found; browser tests skipped (install it: apt-get install -y chromium)`);
      this.skip();
    }
    profile = await mkdtemp(join(tmpdir(), 'bgtasks-chromium-'));
    // Playwright takes the profile as userDataDir (it refuses a --user-data-dir flag); it passes
    // it to Chromium as --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: LAUNCH_TIMEOUT_MS,
    });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
  });

  after(async function () {
    this.timeout(LAUNCH_TIMEOUT_MS);
    try {
      if (context) await context.close();
    } finally {
      context = null;
      if (profile) await rm(profile, { recursive: true, force: true });
      profile = null;
    }
  });

  return () => {
    if (!context) throw new Error('withChromium(): the browser is not running (use it inside the tests of its describe block)');
    const ctx = context;
    return {
      context: ctx,
      newPage: async () => {
        const page = await ctx.newPage();
        const problems: PageProblems = { errors: [] };
        page.on('console', (msg) => {
          if (msg.type() === 'error') problems.errors.push(`console: ${msg.text()}`);
        });
        page.on('pageerror', (err) => problems.errors.push(`page error: ${err.message}`));
        return { page, problems };
      },
    };
  };
}
