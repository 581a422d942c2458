/**
 * The process-wide typed event emitter (the reference's signals). Transition events are emitted
 * after the transaction that made the transition has committed. A listener that throws (or
 * rejects) is logged and changes nothing: it cannot break a worker or a task's settlement.
 */
import { ValidationError } from '../errors.js';
import { processWide } from './global.js';
import { getLogger } from './log.js';
import type { EnqueueOutcome } from '../types.js';

/** What every task event carries. */
export interface TaskEventInfo {
  id: string;
  name: string;
  queue: string | null;
  priority: number;
  /** The attempt number (0 before the first claim). */
  attempt: number;
  /** Epoch ms of the (next) run time. */
  runAt: number;
}

export interface TaskEvents {
  /** A task was stored (not for `existing` or `rescheduled` outcomes). */
  'task:created': TaskEventInfo & { outcome: EnqueueOutcome };
  'task:started': TaskEventInfo & { workerId: string };
  'task:succeeded': TaskEventInfo & { workerId: string; returnValue: unknown; durationMs: number };
  /** An attempt failed; `task:rescheduled` or `task:failed` follows. */
  'task:error': TaskEventInfo & { workerId: string | null; error: unknown };
  'task:rescheduled': TaskEventInfo & { workerId: string | null; error: unknown };
  'task:failed': TaskEventInfo & { workerId: string | null; error: unknown };
  /** The task put itself back (ctx.snooze); `runAt` is when it runs again. */
  'task:snoozed': TaskEventInfo & { workerId: string; runAt: number };
  /** After every attempt, whatever its outcome. */
  'task:finished': TaskEventInfo & { workerId: string | null; outcome: 'succeeded' | 'rescheduled' | 'snoozed' | 'failed' | 'released' };
}

export type TaskEventName = keyof TaskEvents;
type Listener<E extends TaskEventName> = (payload: TaskEvents[E]) => void | Promise<void>;

/** Every event name, for the run-time check (the record makes the compiler ask for a new one). */
const EVENT_NAMES = Object.keys({
  'task:created': true,
  'task:started': true,
  'task:succeeded': true,
  'task:error': true,
  'task:rescheduled': true,
  'task:failed': true,
  'task:snoozed': true,
  'task:finished': true,
} satisfies Record<TaskEventName, true>);

const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? 'an object' : String(v));

/** A listener of an event nobody emits (a typo, from JavaScript) would wait for ever in silence. */
function checkEvent(event: unknown, method: string): void {
  if (!EVENT_NAMES.includes(event as string)) {
    throw new ValidationError(`Unknown event ${shown(event)} in events.${method}() — expected one of: ${EVENT_NAMES.join(', ')}`);
  }
}

function checkListener(event: string, listener: unknown, method: string): void {
  if (typeof listener !== 'function') {
    throw new ValidationError(`Invalid listener in events.${method}(${JSON.stringify(event)}): ${shown(listener)} — expected a function`);
  }
}

export class TaskEventEmitter {
  private readonly listeners = new Map<TaskEventName, Set<Listener<any>>>();
  /** once() wrappers by event and original listener, so off(event, original) removes them. */
  private readonly wrappers = new Map<TaskEventName, WeakMap<Listener<any>, Listener<any>>>();

  on<E extends TaskEventName>(event: E, listener: Listener<E>): () => void {
    checkEvent(event, 'on');
    checkListener(event, listener, 'on');
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<E extends TaskEventName>(event: E, listener: Listener<E>): () => void {
    checkEvent(event, 'once');
    checkListener(event, listener, 'once');
    const wrapper: Listener<E> = (p) => {
      off();
      return listener(p);
    };
    let byListener = this.wrappers.get(event);
    if (!byListener) {
      byListener = new WeakMap();
      this.wrappers.set(event, byListener);
    }
    byListener.set(listener, wrapper);
    const off = this.on(event, wrapper);
    return off;
  }

  off<E extends TaskEventName>(event: E, listener: Listener<E>): void {
    checkEvent(event, 'off');
    checkListener(event, listener, 'off');
    const set = this.listeners.get(event);
    if (!set) return;
    set.delete(listener);
    const wrapper = this.wrappers.get(event)?.get(listener);
    if (wrapper) set.delete(wrapper);
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }

  // Not checked either: it runs per enqueue, start and settle (to skip building unheard payloads).
  listenerCount(event: TaskEventName): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  // Not checked: on() refuses unknown names, so no listener waits for one, and emit runs per task.
  emit<E extends TaskEventName>(event: E, payload: TaskEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return;
    for (const l of [...set]) {
      try {
        const r = l(payload);
        if (r && typeof (r as Promise<void>).catch === 'function') {
          (r as Promise<void>).catch((err: unknown) => listenerFailed(event, err));
        }
      } catch (err) {
        listenerFailed(event, err);
      }
    }
  }
}

function listenerFailed(event: string, err: unknown): void {
  getLogger().error(`a ${event} listener threw; ignored`, { error: err instanceof Error ? err.stack ?? err.message : String(err) });
}

/** The one emitter of this process. */
export const events: TaskEventEmitter = processWide('events', () => new TaskEventEmitter());
