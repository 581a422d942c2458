/**
 * The Tasks page: the filter form (above the live region, so a refresh never disturbs typing),
 * then the live region with the rows, their checkboxes and the keyset pager. Actions on the
 * ticked rows post the `task-actions` form; actions on everything the filter matches go through
 * the confirmation page first, which shows how many tasks they will touch.
 */
import { count, queueLabel, timeCell, truncate } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { csrfField, href, statusBadge, taskHref, type PageParts, type View } from '../layout.js';
import { DEFAULT_LIMIT, DEFAULT_SORT, queryParams, type TaskQuery } from '../query.js';
import type { FilterChoices, TaskAction, TaskPage, TaskSummary } from '../source.js';
import { STATUSES } from '../../types.js';

export const ACTION_LABELS: Record<TaskAction, string> = { retry: 'Retry', runNow: 'Run now', cancel: 'Cancel', delete: 'Delete' };
const ACTION_ORDER: TaskAction[] = ['retry', 'runNow', 'cancel', 'delete'];

/** The time that matters for the row's status, with its word (as `bgtasks list` shows it). */
function timeOf(t: TaskSummary, nowMs: number): SafeHtml {
  if (t.status === 'READY') return html`<span class="muted">${t.runAt.getTime() <= nowMs ? 'due' : 'runs'}</span> ${timeCell(t.runAt, nowMs)}`;
  if (t.status === 'RUNNING') return html`<span class="muted">started</span> ${timeCell(t.startedAt, nowMs)}`;
  return html`<span class="muted">ended</span> ${timeCell(t.finishedAt, nowMs)}`;
}

function row(view: View, t: TaskSummary): SafeHtml {
  return html`<tr data-task-id="${t.id}">
${view.readOnly ? '' : html`<td><input type="checkbox" name="id" value="${t.id}" form="task-actions" data-select aria-label="select task #${t.id}"></td>`}
<td><a href="${taskHref(view, t.id)}">#${t.id}</a></td>
<td>${statusBadge(t.status)}${t.cancelRequested ? html` <span class="muted">cancel requested</span>` : ''}</td>
<td>${t.name}${t.verboseName ? html`<br><span class="muted">${t.verboseName}</span>` : ''}</td>
<td>${queueLabel(t.queue)}</td>
<td class="num hide-narrow">${t.priority}</td>
<td class="num">${t.attempts}</td>
<td>${timeOf(t, view.nowMs)}</td>
<td class="args hide-narrow">${truncate(t.argsPreview, 160)}${t.argsTruncated && t.argsPreview.length <= 160 ? '…' : ''}</td>
<td class="hide-narrow">${t.lastError ? html`<strong>${t.lastError.class}</strong>: ${truncate(t.lastError.message, 140)}` : ''}</td>
</tr>`;
}

/** Form values come from the raw parameters, so a rejected value stays visible for fixing. */
function filterForm(view: View, raw: URLSearchParams, choices: FilterChoices | null): SafeHtml {
  const v = (k: string) => raw.get(k) ?? '';
  const statuses = new Set(raw.getAll('status').flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()));
  const option = (value: string, label: string, current: string) =>
    html`<option value="${value}"${current === value ? html` selected` : ''}>${label}</option>`;
  const sort = v('sort') || DEFAULT_SORT.key;
  const dir = v('dir') || DEFAULT_SORT.direction;
  const limit = v('limit') || String(DEFAULT_LIMIT);
  // In a <details>, so a phone user can fold the form away and see the rows.
  return html`<details class="filter-box" open><summary>Filters</summary><form class="filters" method="get" action="${href(view, '/tasks')}" role="search">
<fieldset><legend class="muted">status</legend>${STATUSES.map(
    (s) => html`<label><input type="checkbox" name="status" value="${s.toLowerCase()}"${statuses.has(s) ? html` checked` : ''}> ${s.toLowerCase()}</label>`,
  )}</fieldset>
<label>queue (comma-separated; - for none)<input type="text" name="queue" value="${v('queue')}" list="queue-choices" autocomplete="off"></label>
<label>task name<input type="text" name="name" value="${v('name')}" list="name-choices" autocomplete="off"></label>
<label>text in arguments<input type="search" name="q" value="${v('q')}" autocomplete="off"></label>
<label>last error class<input type="text" name="error" value="${v('error')}" autocomplete="off"></label>
<label>time<select name="time">${option('enqueuedAt', 'enqueued', v('time') || 'enqueuedAt')}${option('runAt', 'run at', v('time'))}${option('finishedAt', 'finished', v('time'))}</select></label>
<label>from (UTC)<input type="text" name="from" value="${v('from')}" placeholder="2030-01-02T03:04Z" autocomplete="off"></label>
<label>to (UTC)<input type="text" name="to" value="${v('to')}" placeholder="2030-01-03" autocomplete="off"></label>
<label>sort<select name="sort">${option('enqueuedAt', 'enqueued', sort)}${option('runAt', 'run at', sort)}${option('finishedAt', 'finished', sort)}${option('priority', 'priority', sort)}</select></label>
<label>order<select name="dir">${option('desc', 'newest / highest first', dir)}${option('asc', 'oldest / lowest first', dir)}</select></label>
<label>per page<select name="limit">${['25', '50', '100', '200', '500'].map((n) => option(n, n, limit))}${
    ['25', '50', '100', '200', '500'].includes(limit) ? '' : option(limit, limit, limit)
  }</select></label>
<div class="buttons"><button type="submit">Apply</button><a class="button secondary" href="${href(view, '/tasks')}">Reset</a></div>
${choices ? html`<datalist id="queue-choices">${choices.queues.map((q) => html`<option value="${q ?? '-'}"></option>`)}</datalist>
<datalist id="name-choices">${choices.taskNames.map((n) => html`<option value="${n}"></option>`)}</datalist>` : ''}
</form></details>`;
}

/** The form the row checkboxes belong to (outside the live region, so swaps never touch it). */
function actionsForm(view: View, query: TaskQuery | null, returnTo: string): SafeHtml {
  if (view.readOnly) return html``;
  const matching = query ? queryParams({ ...query, cursor: null }) : null;
  const confirmLink = (a: TaskAction) => {
    const p = new URLSearchParams(matching ?? undefined);
    p.set('action', a);
    return html`<a class="button secondary" href="${href(view, '/confirm', p)}">${ACTION_LABELS[a]}…</a>`;
  };
  return html`<form id="task-actions" method="post" action="${href(view, '/actions')}">${csrfField(view)}
<input type="hidden" name="returnTo" value="${returnTo}">
<div class="actions-bar"><span class="label">Ticked tasks:</span>${ACTION_ORDER.map(
    (a) => html`<button type="submit" name="action" value="${a}"${a === 'delete' || a === 'cancel' ? html` class="danger" data-confirm="${ACTION_LABELS[a]} the ticked tasks?"` : ''}>${ACTION_LABELS[a]}</button>`,
  )}</div>
${matching ? html`<div class="actions-bar"><span class="label">Every task matching the filter:</span>${ACTION_ORDER.map(confirmLink)}</div>` : ''}
</form>`;
}

function pager(view: View, query: TaskQuery, page: TaskPage): SafeHtml {
  const link = (cursor: string | null, label: string, rel: string) =>
    html`<a href="${href(view, '/tasks', queryParams(query, cursor))}" rel="${rel}">${label}</a>`;
  return html`<div class="pager">${query.cursor ? link(null, '⇤ First page', 'first') : ''}${page.prev ? link(page.prev, '← Previous', 'prev') : ''}${
    page.next ? link(page.next, 'Next →', 'next') : ''
  }</div>`;
}

export function tasksLive(view: View, query: TaskQuery, page: TaskPage): SafeHtml {
  const head = html`<tr>${view.readOnly ? '' : html`<th><input type="checkbox" data-select-all aria-label="tick every row on this page"></th>`}<th>id</th><th>status</th><th>name</th><th>queue</th><th class="num hide-narrow">priority</th><th class="num">attempts</th><th>time</th><th class="hide-narrow">arguments</th><th class="hide-narrow">last error</th></tr>`;
  return html`<p class="muted" data-row-count="${page.rows.length}">${count(page.rows.length)} task${page.rows.length === 1 ? '' : 's'} on this page.</p>
${
  page.rows.length
    ? html`<div class="table-wrap"><table><thead>${head}</thead><tbody>${page.rows.map((t) => row(view, t))}</tbody></table></div>`
    : html`<p class="muted">No task matches.</p>`
}
${pager(view, query, page)}`;
}

export interface TasksPageInput {
  raw: URLSearchParams;
  query: TaskQuery | null;
  page: TaskPage | null;
  choices: FilterChoices | null;
  returnTo: string;
}

export function tasksPage(view: View, input: TasksPageInput): PageParts {
  const live = input.query && input.page ? tasksLive(view, input.query, input.page) : html`<p class="muted">Fix the filter to see tasks.</p>`;
  return {
    heading: 'Tasks',
    nav: 'tasks',
    top: html`${filterForm(view, input.raw, input.choices)}${actionsForm(view, input.query, input.returnTo)}`,
    live,
  };
}
