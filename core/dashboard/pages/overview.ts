/**
 * The Overview page: totals by status, the oldest due task's wait, failures of the last hour,
 * workers alive, the throughput chart and counts per queue, each linking to the tasks behind it.
 */
import { throughputChart } from '../chart.js';
import { count, duration, queueLabel, timeCell } from '../format.js';
import { html } from '../html.js';
import { href, taskHref, type PageParts, type View } from '../layout.js';
import type { Overview, QueueCounts } from '../source.js';
import { STATUSES, type Status } from '../../types.js';

function tasksLink(view: View, status: Status | null, queue?: string | null): string {
  const p = new URLSearchParams();
  if (status) p.set('status', status.toLowerCase());
  if (queue !== undefined) p.set('queue', queue ?? '-');
  return href(view, '/tasks', p);
}

function queueRow(view: View, q: QueueCounts) {
  return html`<tr data-queue="${queueLabel(q.queue)}"><td><a href="${tasksLink(view, null, q.queue)}">${queueLabel(q.queue)}</a></td>${STATUSES.map(
    (s) => html`<td class="num"><a href="${tasksLink(view, s, q.queue)}">${count(q[s])}</a></td>`,
  )}</tr>`;
}

export function overviewPage(view: View, o: Overview): PageParts {
  const cards = STATUSES.map(
    (s) => html`<div class="card" data-count="${s}"><a href="${tasksLink(view, s)}"><div class="label">${s.toLowerCase()}</div><div class="value">${count(o.totals[s])}</div></a></div>`,
  );
  const since = new URLSearchParams({ since: '3600' });
  const oldest = o.oldestDue
    ? html`<a href="${taskHref(view, o.oldestDue.id)}">#${o.oldestDue.id} ${o.oldestDue.name}</a> (queue ${queueLabel(o.oldestDue.queue)}),
        due since ${timeCell(o.oldestDue.dueSince, view.nowMs)}: waiting <strong>${duration(o.oldestDue.waitSeconds)}</strong>`
    : html`<span class="muted">Nothing due is waiting.</span>`;
  const live = html`<div class="cards">${cards}
<div class="card" data-count="failuresLastHour"><a href="${href(view, '/failed', since)}"><div class="label">failed in the last hour</div><div class="value">${count(o.failuresLastHour)}</div></a></div>
<div class="card" data-count="workersAlive"><a href="${href(view, '/workers')}"><div class="label">workers alive</div><div class="value">${count(o.workersAlive)}</div></a></div>
</div>
<h2>Oldest due task</h2>
<p data-oldest-due>${oldest}</p>
<h2>Throughput, last hour</h2>
${throughputChart(o.throughput)}
<h2>Queues</h2>
${
  o.queues.length
    ? html`<div class="table-wrap"><table><thead><tr><th>queue</th>${STATUSES.map((s) => html`<th class="num">${s.toLowerCase()}</th>`)}</tr></thead>
<tbody>${o.queues.map((q) => queueRow(view, q))}</tbody>
<tfoot><tr><th>(all)</th>${STATUSES.map((s) => html`<th class="num">${count(o.totals[s])}</th>`)}</tr></tfoot></table></div>`
    : html`<p class="muted">No tasks yet.</p>`
}
<p class="muted">As of ${o.at.toISOString()}.</p>`;
  return { heading: 'Overview', nav: 'overview', live };
}
