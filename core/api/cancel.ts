/**
 * `cancel(id)`: a READY task (also one whose worker's lease has expired) becomes FAILED with a
 * CancelledError at once; a RUNNING task gets a cancel request that its worker sees at the next
 * heartbeat, aborting the task's signal. Cancelling also ends a repeat chain. The one
 * implementation is store/cancel.ts (the test modes' memory store has its own record to change).
 */
import { getSettings } from '../config/settings.js';
import type { CancelOutcome } from '../store/cancel.js';
import type { TaskRef } from '../types.js';
import { checkConnectionOptions, openBackend } from './backend.js';
import { checkTaskId } from './handle.js';

export type { CancelOutcome };

/** Cancels a task by id (or TaskRef). */
export async function cancel(idOrRef: string | number | Pick<TaskRef, 'id'>, options: { connection?: string } = {}): Promise<CancelOutcome> {
  const id = checkTaskId(typeof idOrRef === 'object' && idOrRef !== null ? idOrRef.id : idOrRef);
  checkConnectionOptions(options, 'cancel() options');
  return (await openBackend(await getSettings(), options.connection)).cancel(id);
}
