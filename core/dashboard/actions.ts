/**
 * Operator actions from the web: parsing what a form or an API call asks for (an action and
 * either ticked ids or "every task matching this filter"), running it through the source, and
 * saying what changed, as a flash message after the redirect or as JSON. The confirmation page
 * of a filter action lives here too: it counts what the action would touch before anything is done.
 */
import { ValidationError } from '../errors.js';
import { count, plural } from './format.js';
import { html } from './html.js';
import { csrfField, href, type FlashMessage, type PageParts, type View } from './layout.js';
import { ACTION_STATUSES, describeFilter, filterParams } from './query.js';
import type { ActionItem, ActionResult, ActionTarget, DashboardSource, TaskAction, TaskFilter } from './source.js';
import { ACTION_LABELS } from './pages/tasks.js';

export const ACTIONS: readonly TaskAction[] = ['retry', 'cancel', 'delete', 'runNow'];
export const MAX_IDS = 1000;
const MAX_FLASH_LINES = 20;

export function parseAction(v: string | null | undefined): TaskAction {
  if (v && (ACTIONS as readonly string[]).includes(v)) return v as TaskAction;
  throw new ValidationError(`unknown action '${v ?? ''}': expected ${ACTIONS.join(', ')}`);
}

/** Ticked ids: opaque strings, but bounded, so a forged form cannot ask for a million lookups. */
export function parseIds(values: readonly unknown[]): string[] {
  if (values.length > MAX_IDS) throw new ValidationError(`too many task ids: ${values.length} (at most ${MAX_IDS}; act on a filter instead)`);
  const ids = values.map((v) => {
    if (typeof v !== 'string' && typeof v !== 'number') throw new ValidationError('task ids must be strings');
    const id = String(v).trim();
    if (id === '' || id.length > 64) throw new ValidationError(`not a task id: '${id.slice(0, 70)}'`);
    return id;
  });
  return [...new Set(ids)];
}

export function runAction(source: DashboardSource, action: TaskAction, target: ActionTarget): Promise<ActionResult> {
  switch (action) {
    case 'retry':
      return source.retry(target);
    case 'cancel':
      return source.cancel(target);
    case 'delete':
      return source.delete(target);
    case 'runNow':
      return source.runNow(target);
  }
}

const VERB: Record<TaskAction, string> = { retry: 'retried', cancel: 'cancelled', delete: 'deleted', runNow: 'moved to now' };

/** One line per task, in the CLI's words. */
export function itemLine(action: TaskAction, item: ActionItem): string {
  const who = `#${item.id}${item.name ? ` ${item.name}` : ''}`;
  const was = item.before ? item.before.toLowerCase() : 'unknown';
  switch (item.outcome) {
    case 'retried':
      return `${who}: retried as #${item.newId ?? '?'}`;
    case 'cancelled':
      return `${who}: cancelled (now failed)`;
    case 'cancelRequested':
      return `${who}: running: cancel requested; its worker aborts it at its next heartbeat`;
    case 'deleted':
      return `${who}: deleted (was ${was})`;
    case 'movedToNow':
      return `${who}: run time moved to now`;
    case 'unchanged':
      return action === 'runNow' ? `${who}: already due; left as it is` : `${who}: cancel already requested; left as it is`;
    case 'notFound':
      return `#${item.id}: no task has this id`;
    case 'wrongStatus':
      if (action === 'delete' && item.before === 'RUNNING') return `${who}: not deleted: it is running (cancel it instead)`;
      return `${who}: not ${VERB[action]}: it is ${was} (${ACTION_LABELS[action].toLowerCase()} applies to ${ACTION_STATUSES[action]
        .map((s) => s.toLowerCase())
        .join(' or ')} tasks)`;
    case 'changedMeanwhile':
      return `${who}: not ${VERB[action]}: it changed while the action ran`;
  }
}

/** What an action changed, for the flash message shown after the redirect. */
export function summarize(result: ActionResult, expected?: number): FlashMessage {
  const parts = [`${ACTION_LABELS[result.action]}: ${plural(result.changed, 'task')} ${VERB[result.action]}`];
  if (result.unchanged) parts.push(`${count(result.unchanged)} unchanged`);
  if (result.refused) parts.push(`${count(result.refused)} refused`);
  if (expected !== undefined && expected !== result.changed + result.unchanged + result.refused) {
    parts.push(`${count(expected)} matched when you confirmed`);
  }
  const lines = result.items.slice(0, MAX_FLASH_LINES).map((i) => itemLine(result.action, i));
  const more = result.items.length - lines.length + result.itemsOmitted;
  if (more > 0) lines.push(`… and ${count(more)} more`);
  return { kind: result.refused > 0 && result.changed === 0 ? 'error' : 'ok', text: `${parts.join(', ')}.`, lines };
}

export function encodeFlash(flash: FlashMessage): string {
  // A cookie holds about 4 KB: drop detail lines until the message fits.
  const f = { ...flash, lines: [...flash.lines] };
  let text = Buffer.from(JSON.stringify(f)).toString('base64url');
  while (text.length > 3000 && f.lines.length) {
    f.lines.pop();
    text = Buffer.from(JSON.stringify(f)).toString('base64url');
  }
  return text;
}

export function decodeFlash(text: string): FlashMessage | null {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as FlashMessage;
    if ((v.kind !== 'ok' && v.kind !== 'error') || typeof v.text !== 'string' || !Array.isArray(v.lines)) return null;
    return { kind: v.kind, text: v.text, lines: v.lines.filter((l) => typeof l === 'string') };
  } catch {
    return null;
  }
}

/** A return path after an action: only a path under the dashboard's base, never another site. */
export function safeReturnTo(view: Pick<View, 'base'>, value: string | null | undefined): string {
  const fallback = href(view, '/tasks');
  if (!value || value.length > 4000) return fallback;
  if (!value.startsWith(`${view.base}/`) || value.startsWith('//') || /[\\\s]/.test(value)) return fallback;
  return value;
}

export interface ConfirmInput {
  action: TaskAction;
  /** The filter as the user gave it (for the way back). */
  filter: TaskFilter;
  /** Narrowed to the statuses the action applies to; null when none is left. */
  narrowed: TaskFilter | null;
  matching: number;
}

export function confirmPage(view: View, c: ConfirmInput): PageParts {
  const back = href(view, '/tasks', filterParams(c.filter));
  const label = ACTION_LABELS[c.action];
  const what = html`<p>${label} every task matching: <strong>${describeFilter(c.narrowed ?? c.filter)}</strong>.</p>`;
  if (!c.narrowed || c.matching === 0) {
    const why = c.narrowed ? 'No task matches now.' : `${label} applies to ${ACTION_STATUSES[c.action].map((s) => s.toLowerCase()).join(' or ')} tasks only, and the filter selects none of them.`;
    return { heading: `${label}: nothing to do`, nav: 'tasks', live: html`${what}<p>${why}</p><p><a href="${back}">Back to the tasks</a></p>`, still: true };
  }
  const hidden = [...filterParams(c.narrowed)].map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
  const live = html`${what}
<p data-confirm-count="${c.matching}">This ${c.action === 'delete' ? 'deletes' : 'affects'} <strong>${plural(c.matching, 'task')}</strong> as of now; tasks that change meanwhile are refused, and the result lists what changed.</p>
<form method="post" action="${href(view, '/actions')}" class="actions-bar">${csrfField(view)}
<input type="hidden" name="action" value="${c.action}"><input type="hidden" name="scope" value="filter">
<input type="hidden" name="expected" value="${c.matching}"><input type="hidden" name="returnTo" value="${back}">${hidden}
<button type="submit"${c.action === 'delete' || c.action === 'cancel' ? html` class="danger"` : ''}>${label} ${plural(c.matching, 'task')}</button>
<a class="button secondary" href="${back}">Cancel</a></form>`;
  return { heading: `${label} ${plural(c.matching, 'task')}?`, nav: 'tasks', live, still: true };
}
