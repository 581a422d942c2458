/**
 * bgtasks: background tasks stored in your own SQL database. This is the only public entry point.
 */
export { background, type TaskDefinition, type JsonArgsCheck } from './api/background.js';
export type { TaskOptions } from './definition/definition.js';
export { schedule, isSchedule, idempotencyKey, type Schedule, type ScheduleOptions, type BulkOptions } from './api/schedule.js';
export { configure, getSettings, resetConfiguration, type Settings, type SettingsInput } from './config/settings.js';
export { migrate } from './store/migrate.js';
export { cancel, type CancelOutcome } from './api/cancel.js';
export { runNow, type RunNowOutcome, type RunNowResult } from './api/run-now.js';
export {
  createDashboard,
  serveDashboard,
  type CreateDashboardOptions,
  type ServeDashboardOptions,
  type DashboardDatabaseOptions,
} from './dashboard/mount.js';
export type { Dashboard, DashboardServer, DashboardLogger, DashboardSource } from './dashboard/index.js';
export { pauseQueue, resumeQueue, setQueueLimits, queues, type QueueInfo } from './api/queues.js';
export { explain, type WhyAnswer, type WhyReason, type WhyCode } from './api/explain.js';
export type { RateLimit } from './policy/flow.js';
export { dummy } from './api/memory-store.js';
export type { ArgsValidator, StandardSchemaV1 } from './definition/validate.js';
export type { CronSchedule, CatchUp } from './definition/recurring.js';
export { getResult, waitFor } from './api/results.js';
export type { TaskHandle, TaskResult, TaskError, UnreadableFields, UnreadableText } from './api/handle.js';
export { listTasks, createdBy, failedTasks, succeededTasks, type TaskFilter } from './api/queries.js';
export { createWorker, Worker, type WorkerOptions, type WorkerSummary } from './worker/worker.js';
export { closeAll as closeConnections } from './store/open.js';
export { events, type TaskEvents, type TaskEventName, type TaskEventInfo } from './base/events.js';
export { createLogger, setLogger, silentLogger, type Logger } from './base/log.js';
export { setClock, resetClock } from './base/clock.js';
export { ManualClock, systemClock, type Clock } from './base/clock.js';
export type { TaskContext } from './definition/context.js';
export {
  BgtasksError,
  ConfigError,
  ValidationError,
  PermanentTaskError,
  InvalidTaskError,
  TaskTimeoutError,
  CancelledError,
  ExpiredError,
  QueueFullError,
  TaskNotFoundError,
  UnknownTaskError,
  NotMigratedError,
  LeaseLostError,
  WorkerLostError,
  RecordRefusedError,
  WorkerStoppedError,
  TaskLoadError,
  DatabaseUnavailableError,
  TaskNotFinishedError,
  TaskFailedError,
  WaitTimeoutError,
  CorruptDataError,
  TooManySnoozesError,
  Snooze,
  snooze,
  isSnooze,
} from './errors.js';
export {
  Repeat,
  STATUSES,
  type Status,
  type TaskRef,
  type Json,
  type When,
  type DurationObject,
  type Creator,
  type CallOptions,
  type DedupeAction,
  type EnqueueOutcome,
} from './types.js';
