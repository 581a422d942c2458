/**
 * The Schedules page: the cron schedules workers registered (as `bgtasks schedules` lists them),
 * with their zone, last and next slot and pending task; "Run now" moves that READY task's run
 * time to now (the runNow action), so the chain goes on from its scheduled slot as before.
 */
import { timeCell } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { csrfField, href, statusBadge, taskHref, type PageParts, type View } from '../layout.js';
import type { CronSchedule } from '../source.js';

function runNowButton(view: View, s: CronSchedule): SafeHtml {
  if (view.readOnly || !s.pendingTask || s.pendingTask.status !== 'READY') return html``;
  return html`<form class="inline" method="post" action="${href(view, '/actions')}">${csrfField(view)}
<input type="hidden" name="id" value="${s.pendingTask.id}"><input type="hidden" name="returnTo" value="${href(view, '/schedules')}">
<button type="submit" name="action" value="runNow">Run now</button></form>`;
}

function row(view: View, s: CronSchedule): SafeHtml {
  const pending = s.pendingTask
    ? html`<a href="${taskHref(view, s.pendingTask.id)}">#${s.pendingTask.id}</a> ${statusBadge(s.pendingTask.status)} ${timeCell(s.pendingTask.runAt, view.nowMs)}${
        s.pendingCount > 1 ? html` <span class="muted">(+${s.pendingCount - 1} more)</span>` : ''
      }`
    : html`<span class="muted">none</span>`;
  return html`<tr data-schedule="${s.name}|${s.key}">
<td>${s.name}</td><td>${s.key}</td><td class="mono">${s.cron}</td><td>${s.timezone}</td>
<td class="hide-narrow">${timeCell(s.lastSlot, view.nowMs)}</td>
<td>${s.stale ? html`<strong>(stale)</strong>` : timeCell(s.nextSlot, view.nowMs)}</td>
<td>${pending}</td>
<td class="hide-narrow">${timeCell(s.lastSeenAt, view.nowMs)}${s.lastSeenBy ? html`<br><span class="muted">${s.lastSeenBy}</span>` : ''}</td>
<td class="args hide-narrow">${s.args}</td>
${view.readOnly ? '' : html`<td>${runNowButton(view, s)}</td>`}
</tr>`;
}

export function schedulesLive(view: View, list: CronSchedule[]): SafeHtml {
  if (!list.length) {
    return html`<p class="muted">No cron schedules registered yet (a worker registers the schedules of its task files when it starts).</p>`;
  }
  return html`<div class="table-wrap"><table><thead><tr><th>task</th><th>key</th><th>cron</th><th>zone</th><th class="hide-narrow">last slot</th><th>next slot</th><th>pending task</th><th class="hide-narrow">last seen</th><th class="hide-narrow">arguments</th>${
    view.readOnly ? '' : html`<th></th>`
  }</tr></thead>
<tbody>${list.map((s) => row(view, s))}</tbody></table></div>${
    list.some((s) => s.stale)
      ? html`<p class="muted">(stale): no worker has declared the schedule for 10 minutes: it was removed from the task files, or no worker that loads them runs.</p>`
      : ''
  }`;
}

export function schedulesPage(view: View, list: CronSchedule[]): PageParts {
  return { heading: 'Cron schedules', nav: 'schedules', live: schedulesLive(view, list) };
}
