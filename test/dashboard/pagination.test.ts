/**
 * Keyset pagination on the Tasks page: the pager's links carry the source's opaque cursor and the
 * filter and sort, never an offset; following "Next" visits every matching task once, "Previous"
 * comes back to the same rows, and the pages stay right while tasks are added in front.
 */
import { expect } from 'chai';
import { createDashboard } from '../../core/dashboard/index.js';
import { Client } from './client.js';
import { memTask, MemorySource } from './memory-source.js';
import { fixedClock, NOW } from './fixtures.js';

function setup(n: number) {
  const clock = fixedClock();
  const source = new MemorySource(clock.now);
  for (let i = 1; i <= n; i++) {
    source.tasks.push(
      memTask(i, {
        name: i % 2 ? 'odd' : 'even',
        priority: i % 3,
        status: i % 4 === 0 ? 'READY' : 'SUCCESSFUL',
        at: NOW - i * 1000,
        finishedAt: i % 4 === 0 ? null : NOW - i * 500,
      }),
    );
  }
  const dashboard = createDashboard({ source, now: clock.now });
  return { source, client: new Client(dashboard.fetch) };
}

const ids = (page: string): string[] => [...page.matchAll(/<tr data-task-id="([^"]+)">/g)].map((m) => m[1]);
const link = (page: string, rel: string): string | null => {
  const m = new RegExp(`<a href="([^"]+)" rel="${rel}">`).exec(page);
  return m ? m[1].replace(/&amp;/g, '&') : null;
};

async function walk(client: Client, first: string): Promise<string[][]> {
  const pages: string[][] = [];
  let url: string | null = first;
  for (let guard = 0; url && guard < 100; guard++) {
    const text = await (await client.get(url)).text();
    pages.push(ids(text));
    url = link(text, 'next');
  }
  return pages;
}

describe('dashboard keyset pagination', () => {
  it('visits every matching task once, in order, whatever the sort (ties on priority, nulls of finishedAt)', async () => {
    const { client, source } = setup(23);
    for (const [sort, dir] of [
      ['enqueuedAt', 'desc'],
      ['priority', 'asc'],
      ['finishedAt', 'desc'],
      ['runAt', 'asc'],
    ]) {
      const pages = await walk(client, `/tasks?sort=${sort}&dir=${dir}&limit=5`);
      expect(pages.map((p) => p.length), `${sort} ${dir}`).to.deep.equal([5, 5, 5, 5, 3]);
      const all = pages.flat();
      expect(new Set(all).size, `${sort} ${dir}`).to.equal(23);
      const expected = (await source.listTasks({ filter: {}, sort: { key: sort as 'runAt', direction: dir as 'asc' }, limit: 500, cursor: null })).rows.map((r) => r.id);
      expect(all, `${sort} ${dir}`).to.deep.equal(expected);
    }
  });

  it('keeps the filter and sort in the pager links, with an opaque cursor and no offset', async () => {
    const { client } = setup(12);
    const text = await (await client.get('/tasks?name=odd&sort=priority&limit=2')).text();
    const next = link(text, 'next') ?? '';
    const params = new URLSearchParams(next.split('?')[1]);
    expect(params.get('name')).to.equal('odd');
    expect(params.get('sort')).to.equal('priority');
    expect(params.get('limit')).to.equal('2');
    expect(params.get('cursor')).to.match(/^[A-Za-z0-9_-]+$/);
    expect(next).not.to.match(/offset|page=/);
    expect(link(text, 'prev')).to.equal(null);
    expect(link(text, 'first')).to.equal(null);
  });

  it('"Previous" returns the rows of the page before, and "First page" the first', async () => {
    const { client } = setup(12);
    const p1 = await (await client.get('/tasks?limit=4')).text();
    const p2 = await (await client.get(link(p1, 'next') ?? '')).text();
    const p3 = await (await client.get(link(p2, 'next') ?? '')).text();
    expect(link(p3, 'next')).to.equal(null);
    const back = await (await client.get(link(p3, 'prev') ?? '')).text();
    expect(ids(back)).to.deep.equal(ids(p2));
    const first = await (await client.get(link(p3, 'first') ?? '')).text();
    expect(ids(first)).to.deep.equal(ids(p1));
  });

  it('a page keeps its rows when newer tasks arrive in front (a cursor is a position, not an offset)', async () => {
    const { client, source } = setup(10);
    const p1 = await (await client.get('/tasks?limit=3')).text();
    const nextUrl = link(p1, 'next') ?? '';
    const before = ids(await (await client.get(nextUrl)).text());
    for (let i = 100; i < 105; i++) source.tasks.push(memTask(i, { at: NOW + i }));
    expect(ids(await (await client.get(nextUrl)).text())).to.deep.equal(before);
  });

  it('the live fragment of a later page keeps its pager', async () => {
    const { client } = setup(9);
    const p1 = await (await client.get('/tasks?limit=3')).text();
    const p2url = link(p1, 'next') ?? '';
    const fragment = await (await client.get(`${p2url}&fragment=1`)).text();
    expect(ids(fragment)).to.have.length(3);
    expect(link(fragment, 'prev')).to.be.a('string');
    expect(link(fragment, 'next')).to.be.a('string');
    expect(link(fragment, 'next')).not.to.contain('fragment');
  });
});
