/**
 * Standard output and error at the process's end. Node writes to a pipe asynchronously once the
 * pipe is full (64 KiB on Linux), so exiting right after a large write cuts it; and a reader that
 * closes the pipe early (`| head`) makes the next write fail with EPIPE, which Node throws as an
 * unhandled 'error' event. Every command exits through exitWhenFlushed(), and a closed reader ends
 * the output quietly, as other Unix tools do.
 */

type Stream = NodeJS.WriteStream;

let readerGone = false;
let writeFailed = false;
const goneListeners = new Set<() => void>();
const buffered = new Set<() => void>();

/**
 * Registers the flush of output held back in this process (the worker's buffered log lines);
 * returns a function that removes it. Everything registered is written before the process exits
 * and before a failure goes to stderr, so that no line is lost or overtaken.
 */
export function holdsOutput(flush: () => void): () => void {
  buffered.add(flush);
  return () => buffered.delete(flush);
}

/** Writes the output held back in this process now. */
export function flushHeldOutput(): void {
  for (const flush of buffered) flush();
}

// process.exit() from anywhere (a second signal's path, a library): what is held is still
// written, synchronously, as standard output to a file, pipe or terminal is on Linux.
process.on('exit', flushHeldOutput);

/** Whether the reader of stdout (or stderr) has closed it. */
export function outputClosed(): boolean {
  return readerGone;
}

/**
 * Calls `fn` once when the reader of stdout or stderr goes away (EPIPE); returns a function that
 * removes it. A worker uses it to stop gracefully: its log has nowhere to go.
 */
export function onOutputClosed(fn: () => void): () => void {
  goneListeners.add(fn);
  return () => goneListeners.delete(fn);
}

function closed(): void {
  if (readerGone) return;
  readerGone = true;
  for (const fn of [...goneListeners]) fn();
}

/** Installs the error handlers on stdout and stderr (once, before any command writes). */
export function guardOutput(): void {
  for (const stream of [process.stdout, process.stderr] as Stream[]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // EPIPE: the reader closed the pipe. ERR_STREAM_DESTROYED: a write after that. Anything
      // else (EIO on a vanished terminal, ENOSPC on a full disk) also leaves nowhere to write,
      // and is worth an exit code a script can see.
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED' && err.code !== 'ECONNRESET') writeFailed = true;
      closed();
    });
  }
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or cannot be). */
function flushed(stream: Stream): Promise<void> {
  if (readerGone || stream.destroyed || !stream.writable || stream.writableLength === 0) return Promise.resolve();
  // Writes complete in order: the callback of an empty write runs after every earlier one.
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Waits until stdout and stderr are written out, then exits with `code` (1 instead of 0 when a
 * write failed for another reason than a closed reader).
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  flushHeldOutput();
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(writeFailed && code === 0 ? 1 : code);
}
