/**
 * Whether another worker's process is certainly gone, as far as this process can tell: only a
 * process on this machine (the same host name) in this pid namespace can be asked about, and
 * only "no such process" counts. See Maintenance.recoverDeadWorkers.
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';

let ownNamespace: string | null | undefined;

/** Linux: this process's pid namespace (`pid:[4026531836]`); null where there is none to read. */
export function pidNamespace(): string | null {
  if (ownNamespace === undefined) {
    try {
      ownNamespace = readlinkSync('/proc/self/ns/pid');
    } catch {
      ownNamespace = null;
    }
  }
  return ownNamespace;
}

/** Where a registered worker ran. */
export interface ProcessPlace {
  host: string;
  pid: number | null;
  pidNamespace: string | null;
}

/**
 * True only when the process ran here (same host name and the same pid namespace, both unknown
 * counting as the same only when neither side has one) and the kernel has no process with its
 * pid. A pid that exists, even one reused by another program, or a worker elsewhere (another
 * machine, or a container with the same host name but its own pid namespace) is not gone.
 */
export function processGoneHere(p: ProcessPlace): boolean {
  const { host, pid } = p;
  if (pid === null || pid <= 0 || host !== os.hostname() || pid === process.pid) return false;
  if (p.pidNamespace !== pidNamespace()) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
