/**
 * The Task page: everything stored about one task (the `bgtasks show` record), its repeat or cron
 * chain neighbours, its attempts and its error history with stacks, and the actions its status
 * allows. The whole record is the live region: a running task's lease and status move on their
 * own, and open error stacks stay open across refreshes.
 */
import { duration, isoTime, prettyJson, queueLabel, timeCell } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { csrfField, href, statusBadge, taskHref, type PageParts, type View } from '../layout.js';
import { ACTION_STATUSES } from '../query.js';
import type { TaskAction, TaskDetail } from '../source.js';
import { ACTION_LABELS } from './tasks.js';

function actionButtons(view: View, t: TaskDetail): SafeHtml {
  if (view.readOnly) return html``;
  const allowed = (['retry', 'runNow', 'cancel', 'delete'] as TaskAction[]).filter((a) => ACTION_STATUSES[a].includes(t.status));
  if (!allowed.length) return html``;
  return html`<form method="post" action="${href(view, '/actions')}" class="actions-bar">${csrfField(view)}
<input type="hidden" name="id" value="${t.id}"><input type="hidden" name="returnTo" value="${taskHref(view, t.id)}">
${allowed.map(
    (a) => html`<button type="submit" name="action" value="${a}"${a === 'delete' || a === 'cancel' ? html` class="danger" data-confirm="${ACTION_LABELS[a]} task #${t.id}?"` : ''}>${ACTION_LABELS[a]}</button>`,
  )}</form>`;
}

const field = (label: string, value: SafeHtml | string | number | null): SafeHtml => html`<dt>${label}</dt><dd>${value ?? html`<span class="muted">—</span>`}</dd>`;

function repeatText(t: TaskDetail): string | null {
  if (!t.repeat) return null;
  const parts: string[] = [];
  if (t.repeat.everySeconds) parts.push(`every ${duration(t.repeat.everySeconds)}`);
  if (t.repeat.cron) parts.push(`cron ${t.repeat.cron}${t.repeat.timezone ? ` (${t.repeat.timezone})` : ''}`);
  if (t.repeat.until) parts.push(`until ${isoTime(t.repeat.until)}`);
  return parts.join(', ');
}

export function taskLive(view: View, t: TaskDetail): SafeHtml {
  const now = view.nowMs;
  const chainLink = (id: string | null) => (id ? html`<a href="${taskHref(view, id)}">#${id}</a>` : null);
  const fields = html`<dl class="fields">
${field('status', html`${statusBadge(t.status)}${t.cancelRequested ? html` <span class="muted">cancel requested</span>` : ''}`)}
${field('name', t.name)}
${field('verbose name', t.verboseName)}
${field('queue', queueLabel(t.queue))}
${field('priority', t.priority)}
${field('attempts', `${t.attempts}${t.maxAttempts !== null ? ` of at most ${t.maxAttempts}` : ''}`)}
${field('creator', t.creator ? `${t.creator.type}:${t.creator.id}` : null)}
${field('dedupe hash', t.hash ? html`<span class="mono">${t.hash}</span>` : null)}
${field('enqueued', timeCell(t.enqueuedAt, now))}
${field('scheduled for', timeCell(t.scheduledAt, now))}
${field('run at', timeCell(t.runAt, now))}
${field('started', timeCell(t.startedAt, now))}
${field('finished', timeCell(t.finishedAt, now))}
${t.failedAt ? field('failed', timeCell(t.failedAt, now)) : ''}
${t.expiresAt ? field('expires', timeCell(t.expiresAt, now)) : ''}
${field('worker', t.workerId)}
${field('lease', t.lease ? html`held by ${t.lease.workerId} until ${timeCell(t.lease.until, now)}` : null)}
${field('repeat', repeatText(t))}
${t.recurringKey ? field('cron schedule', t.recurringKey) : ''}
${field('previous in chain', chainLink(t.predecessorId))}
${field('next in chain', chainLink(t.successorId))}
</dl>`;
  const attempts = t.attemptHistory.length
    ? html`<div class="table-wrap"><table><thead><tr><th class="num">attempt</th><th>outcome</th><th>worker</th><th>started</th><th>ended</th></tr></thead><tbody>${t.attemptHistory.map(
        (a) => html`<tr><td class="num">${a.attempt}</td><td>${a.outcome}</td><td>${a.workerId ?? '—'}</td><td>${timeCell(a.startedAt, now)}</td><td>${timeCell(a.endedAt, now)}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No attempt yet.</p>`;
  const errors = t.errors.length
    ? t.errors.map(
        (e, i) => html`<details data-key="error-${i}"><summary>attempt ${e.attempt} at ${isoTime(e.at)}${e.workerId ? ` on ${e.workerId}` : ''}: <strong>${e.class}</strong>: ${e.message}</summary><pre>${e.stack}</pre></details>`,
      )
    : html`<p class="muted">No errors.</p>`;
  return html`${actionButtons(view, t)}${fields}
<h2>Arguments</h2><pre data-args>${prettyJson(t.args)}</pre>
${t.result !== null ? html`<h2>Result</h2><pre data-result>${prettyJson(t.result)}</pre>` : ''}
<h2>Attempts</h2>${attempts}
<h2>Errors (${t.errors.length}, oldest first)</h2>${errors}`;
}

export function taskPage(view: View, t: TaskDetail): PageParts {
  return { heading: `Task #${t.id} ${t.name}`, nav: 'tasks', live: taskLive(view, t) };
}

export function taskNotFoundPage(id: string): PageParts {
  return { heading: 'No such task', nav: 'tasks', live: html`<p>No task or result has id <span class="mono">${id}</span>. It may have been deleted or pruned.</p>` };
}
