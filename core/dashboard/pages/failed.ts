/**
 * The Failed page: FAILED tasks grouped by task name and error class, over a chosen window, with
 * links to the tasks of each group and bulk retry or delete for a group (through the confirmation
 * page, which counts what the action will touch).
 */
import { count, timeCell, truncate } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { href, taskHref, type PageParts, type View } from '../layout.js';
import { filterParams } from '../query.js';
import type { FailureGroup, TaskFilter } from '../source.js';

/** The windows the page offers, in seconds (0: every kept result). */
export const FAILED_WINDOWS: ReadonlyArray<[number, string]> = [
  [3600, 'last hour'],
  [86_400, 'last 24 hours'],
  [604_800, 'last 7 days'],
  [2_592_000, 'last 30 days'],
  [0, 'all kept results'],
];
export const DEFAULT_FAILED_WINDOW = 86_400;

/** The task filter behind one group, or behind the whole window when `group` is null. */
export function groupFilter(group: Pick<FailureGroup, 'name' | 'errorClass'> | null, since: Date | null): TaskFilter {
  const f: TaskFilter = { statuses: ['FAILED'] };
  if (group) {
    f.names = [group.name];
    if (group.errorClass !== '') f.errorClass = group.errorClass;
  }
  if (since) f.range = { field: 'finishedAt', from: since };
  return f;
}

function windowForm(view: View, windowSeconds: number): SafeHtml {
  return html`<form class="filters" method="get" action="${href(view, '/failed')}">
<label>failed in the<select name="since">${FAILED_WINDOWS.map(
    ([s, label]) => html`<option value="${s}"${s === windowSeconds ? html` selected` : ''}>${label}</option>`,
  )}</select></label>
<div class="buttons"><button type="submit">Show</button></div></form>`;
}

function groupRow(view: View, g: FailureGroup, since: Date | null): SafeHtml {
  const params = filterParams(groupFilter(g, since));
  const confirm = (action: 'retry' | 'delete', label: string) => {
    const p = new URLSearchParams(params);
    p.set('action', action);
    return html`<a class="button${action === 'delete' ? ' danger' : ' secondary'}" href="${href(view, '/confirm', p)}">${label}…</a>`;
  };
  return html`<tr data-group="${g.name}|${g.errorClass}">
<td>${g.name}</td><td><strong>${g.errorClass || '(no error record)'}</strong></td>
<td class="num"><a href="${href(view, '/tasks', params)}">${count(g.count)}</a></td>
<td>${timeCell(g.lastFailedAt, view.nowMs)}</td>
<td class="hide-narrow"><a href="${taskHref(view, g.sampleTaskId)}">#${g.sampleTaskId}</a>: ${truncate(g.sampleMessage, 200)}</td>
${view.readOnly ? '' : html`<td>${confirm('retry', 'Retry all')} ${confirm('delete', 'Delete all')}</td>`}
</tr>`;
}

export function failedLive(view: View, groups: FailureGroup[], since: Date | null): SafeHtml {
  if (!groups.length) return html`<p class="muted">No failed task in this window.</p>`;
  const total = groups.reduce((a, g) => a + g.count, 0);
  return html`<p class="muted">${count(total)} failed task${total === 1 ? '' : 's'} in ${count(groups.length)} group${groups.length === 1 ? '' : 's'}.</p>
<div class="table-wrap"><table><thead><tr><th>task name</th><th>error class</th><th class="num">tasks</th><th>last failed</th><th class="hide-narrow">latest message</th>${
    view.readOnly ? '' : html`<th>actions</th>`
  }</tr></thead>
<tbody>${groups.map((g) => groupRow(view, g, since))}</tbody></table></div>`;
}

export function failedPage(view: View, windowSeconds: number, groups: FailureGroup[], since: Date | null): PageParts {
  return { heading: 'Failed tasks', nav: 'failed', top: windowForm(view, windowSeconds), live: failedLive(view, groups, since) };
}
