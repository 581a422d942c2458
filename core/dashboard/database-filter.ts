/** The dashboard's task filter in the store's terms (core/store/task-pages.ts): times as epoch ms. */
import type { PageFilter } from '../store/task-pages.js';
import type { TaskFilter } from './source.js';

/** The source's filter in the store's terms (times as epoch ms). */
export function pageFilterOf(f: TaskFilter): PageFilter {
  const out: PageFilter = {};
  if (f.statuses?.length) out.statuses = f.statuses;
  if (f.queues?.length) out.queues = f.queues;
  if (f.names?.length) out.names = f.names;
  if (f.argsContain !== undefined && f.argsContain !== '') out.argsContain = f.argsContain;
  if (f.errorClass !== undefined) out.errorClass = f.errorClass;
  if (f.range) out.range = { field: f.range.field, fromMs: f.range.from?.getTime(), toMs: f.range.to?.getTime() };
  return out;
}
