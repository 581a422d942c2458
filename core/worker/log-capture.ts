/**
 * `--log-std`: what a task writes to console, stdout or stderr becomes log lines tagged with that
 * task's id and name. The running task is known from the executor's AsyncLocalStorage, so tasks
 * running at the same time never get each other's output; output outside any task passes through.
 */
import { runningTask, taskContext, type RunningTaskInfo } from '../definition/executor.js';
import type { Logger } from '../base/log.js';

type Write = typeof process.stdout.write;

let flushActive: ((taskId: string) => void) | null = null;

/** Logs what a task wrote without a final newline (the worker calls it when the attempt ends). */
export function flushTaskOutput(taskId: string): void {
  flushActive?.(taskId);
}

/** Installs the capture; returns the function that removes it (flushing partial lines). */
export function captureTaskOutput(log: Logger): () => void {
  const partial = new Map<string, { task: RunningTaskInfo; stream: 'stdout' | 'stderr'; text: string }>();

  const emit = (task: RunningTaskInfo, stream: 'stdout' | 'stderr', line: string) => {
    const fields = { id: task.id, name: task.name, stream };
    if (stream === 'stderr') log.warn(line, fields);
    else log.info(line, fields);
  };

  const patch = (stream: 'stdout' | 'stderr'): (() => void) => {
    const target = process[stream];
    const original = target.write;
    const replacement = function (this: NodeJS.WriteStream, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      const task = runningTask.getStore();
      if (!task) return (original as (...a: unknown[]) => boolean).call(target, chunk, encoding, cb);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      const key = `${task.id}\u0000${stream}`;
      const buffered = (partial.get(key)?.text ?? '') + text;
      const lines = buffered.split('\n');
      const rest = lines.pop()!;
      for (const line of lines) emit(task, stream, line);
      if (rest) partial.set(key, { task, stream, text: rest });
      else partial.delete(key);
      const done = typeof encoding === 'function' ? encoding : cb;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    };
    target.write = replacement as Write;
    return () => {
      target.write = original;
    };
  };

  const undo = [patch('stdout'), patch('stderr')];
  taskContext.tracked = true;
  flushActive = (taskId) => {
    for (const [key, p] of partial) {
      if (p.task.id !== taskId) continue;
      emit(p.task, p.stream, p.text);
      partial.delete(key);
    }
  };
  return () => {
    taskContext.tracked = false;
    flushActive = null;
    for (const u of undo) u();
    for (const p of partial.values()) emit(p.task, p.stream, p.text);
    partial.clear();
  };
}
