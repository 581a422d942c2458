/**
 * How an attempt's CONSUMER span ends (base/tracing.ts starts it): with what the worker decided
 * (`bgtasks.outcome`: complete, retry, fail, snooze, release), and, when the task threw, timed
 * out, was cancelled or lost its lease, the error recorded and the status ERROR.
 */
import { failSpan, type OtelApi, type OtelSpan } from '../base/tracing.js';
import type { Decision, Execution } from '../policy/transitions.js';

export function endAttemptSpan(api: OtelApi, span: OtelSpan, execution: Execution, decision: Decision): void {
  span.setAttribute('bgtasks.outcome', decision.type);
  if (decision.type === 'retry') span.setAttribute('bgtasks.retry_at', new Date(decision.runAt).toISOString());
  if ('error' in execution) {
    failSpan(api, span, execution.error);
    return;
  }
  span.end();
}
