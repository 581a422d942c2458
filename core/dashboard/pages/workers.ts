/**
 * The Workers page: live workers from the worker registry (host, pid, version, queues,
 * concurrency, last heartbeat, the tasks they run and for how long), then workers gone recently.
 */
import { count, duration, queueLabel, timeCell } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { taskHref, type PageParts, type View } from '../layout.js';
import type { WorkerInfo, WorkerList } from '../source.js';

function running(view: View, w: WorkerInfo): SafeHtml {
  if (!w.running.length) return html`<span class="muted">idle</span>`;
  return html`<ul>${w.running.map(
    (t) => html`<li><a href="${taskHref(view, t.id)}">#${t.id}</a> ${t.name} <span class="muted">(${queueLabel(t.queue)}) for ${duration(
      (view.nowMs - t.startedAt.getTime()) / 1000,
    )}</span></li>`,
  )}</ul>`;
}

const queues = (w: WorkerInfo): string => (w.queues === null ? 'every queue' : w.queues.map(queueLabel).join(', '));

export function workersLive(view: View, list: WorkerList): SafeHtml {
  const alive = list.alive.length
    ? html`<div class="table-wrap"><table><thead><tr><th>worker</th><th class="hide-narrow">host</th><th class="num hide-narrow">pid</th><th class="hide-narrow">version</th><th>queues</th><th class="num">concurrency</th><th>last heartbeat</th><th>running</th></tr></thead>
<tbody>${list.alive.map(
        (w) => html`<tr data-worker="${w.id}"><td class="mono">${w.id}<br><span class="muted">up since ${timeCell(w.startedAt, view.nowMs)}</span></td>
<td class="hide-narrow">${w.host}</td><td class="num hide-narrow">${w.pid ?? '—'}</td><td class="hide-narrow">${w.version ?? '—'}</td>
<td>${queues(w)}</td><td class="num">${count(w.running.length)} / ${count(w.concurrency)}</td>
<td>${timeCell(w.lastHeartbeatAt, view.nowMs)}</td><td>${running(view, w)}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No worker is alive.</p>`;
  const gone = list.gone.length
    ? html`<div class="table-wrap"><table><thead><tr><th>worker</th><th class="hide-narrow">host</th><th>state</th><th>gone</th><th>last heartbeat</th></tr></thead>
<tbody>${list.gone.map(
        (w) => html`<tr data-worker="${w.id}"><td class="mono">${w.id}</td><td class="hide-narrow">${w.host}</td><td>${w.state}</td><td>${timeCell(w.goneAt, view.nowMs)}</td><td>${timeCell(
          w.lastHeartbeatAt,
          view.nowMs,
        )}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">None.</p>`;
  return html`<h2>Alive (${count(list.alive.length)})</h2>${alive}<h2>Gone recently (${count(list.gone.length)})</h2>${gone}`;
}

export function workersPage(view: View, list: WorkerList): PageParts {
  return { heading: 'Workers', nav: 'workers', live: workersLive(view, list) };
}
