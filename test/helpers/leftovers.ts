/**
 * What the fault-scenario helpers leave on the machine while they run (process groups, temp
 * dirs, network namespaces, host-side links, SysV shared memory), and the synchronous clean-up of
 * such leftovers. Shared by the test process (on exit) and by the leftover watchdog (when the
 * test process died without running its exit handlers), so both clean up the same way.
 *
 * Linux only: processes are identified through /proc.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';

/** One thing to remove if the test process goes away before removing it itself. */
export type Leftover =
  /**
   * A process we started, with its group and descendants (PostgreSQL's backends leave the group:
   * each calls setsid). `startTime` (from /proc) guards against a reused pid.
   */
  | { kind: 'tree'; pid: number; startTime: number }
  | { kind: 'dir'; path: string }
  | { kind: 'netns'; name: string }
  /** A link in the initial namespace (a bridge, the host end of a veth pair). */
  | { kind: 'link'; name: string }
  /** A SysV shared memory segment, removed only while nothing is attached to it. */
  | { kind: 'shm'; key: number; id: number };

export function leftoverKey(l: Leftover): string {
  switch (l.kind) {
    case 'tree':
      return `tree:${l.pid}`;
    case 'dir':
      return `dir:${l.path}`;
    case 'netns':
      return `netns:${l.name}`;
    case 'link':
      return `link:${l.name}`;
    case 'shm':
      return `shm:${l.id}`;
  }
}

export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

/** /proc/PID/stat, or null when there is no such process. */
export function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime: Number(rest[19]) };
}

function living(st: ProcStat | null): st is ProcStat {
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Every living (not zombie) process on the machine. */
export function processTable(): ProcStat[] {
  const found: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (living(st)) found.push(st);
  }
  return found;
}

/** Living processes whose process group is `pgid`. */
export function groupMembers(pgid: number, table = processTable()): ProcStat[] {
  return table.filter((p) => p.pgrp === pgid);
}

/**
 * Whether process `l` is still the one we started. Its group counts too while it is gone: Linux
 * keeps a pid reserved while a group of that id lives, so those members are its children.
 */
function stillOurs(l: { pid: number; startTime: number }, table: ProcStat[]): boolean {
  const leader = table.find((p) => p.pid === l.pid);
  if (leader) return leader.startTime === l.startTime;
  return groupMembers(l.pid, table).length > 0;
}

/** The process `l` (if still ours), its group and all its descendants, as one snapshot. */
export function treeOf(l: { pid: number; startTime: number }, table = processTable()): ProcStat[] {
  if (!stillOurs(l, table)) return [];
  const found = new Map<number, ProcStat>();
  for (const p of table) if (p.pid === l.pid || p.pgrp === l.pid) found.set(p.pid, p);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of table) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...found.values()];
}

/** Whether any of `procs` (a snapshot) still lives as the same process. */
export function anyAlive(procs: ProcStat[]): boolean {
  return procs.some((p) => {
    const now = procStat(p.pid);
    return living(now) && now.startTime === p.startTime;
  });
}

/**
 * SIGKILLs the tree of `l` and returns it, to wait on with `anyAlive`. The tree is taken before
 * the first kill, since orphans lose their parent link, and with the leader stopped, so that it
 * cannot fork a child the snapshot misses.
 */
export function killTreeSync(l: { pid: number; startTime: number }): ProcStat[] {
  const leader = procStat(l.pid);
  if (living(leader) && leader.startTime === l.startTime) {
    try {
      process.kill(l.pid, 'SIGSTOP');
    } catch {
      // It exited meanwhile: its group and orphans are still found below.
    }
  }
  const tree = treeOf(l);
  for (const p of tree) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  return tree;
}

/** The attach count of SysV segment `id` if it still has `key`, else null. */
function shmAttachCount(key: number, id: number): number | null {
  if (!existsSync('/proc/sysvipc/shm')) return null;
  for (const line of readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (Number(f[0]) === key && Number(f[1]) === id) return Number(f[6]);
  }
  return null;
}

/** Whether the leftover still exists on the machine. */
export function stillThere(l: Leftover): boolean {
  switch (l.kind) {
    case 'tree':
      return treeOf(l).length > 0;
    case 'dir':
      return existsSync(l.path);
    case 'netns':
      return existsSync(`/run/netns/${l.name}`);
    case 'link':
      return existsSync(`/sys/class/net/${l.name}`);
    case 'shm':
      return shmAttachCount(l.key, l.id) !== null;
  }
}

function quietly(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Gone already, or the tool is missing: nothing more can be done here.
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes leftovers, synchronously (it runs in exit handlers): process trees first (SIGKILL,
 * then up to `waitMs` for them to vanish, since a server may still hold its data dir or shared
 * memory), then namespaces, links, shared memory and directories.
 */
export function removeLeftoversSync(items: Leftover[], waitMs = 3_000): void {
  const killed = items.flatMap((l) => (l.kind === 'tree' ? killTreeSync(l) : []));
  const end = Date.now() + waitMs;
  while (anyAlive(killed) && Date.now() < end) sleepSync(20);
  for (const l of items) {
    if (l.kind === 'netns') quietly('ip', ['netns', 'delete', l.name]);
    if (l.kind === 'link') quietly('ip', ['link', 'delete', l.name]);
    if (l.kind === 'shm' && shmAttachCount(l.key, l.id) === 0) quietly('ipcrm', ['-m', String(l.id)]);
  }
  for (const l of items) if (l.kind === 'dir') rmSync(l.path, { recursive: true, force: true });
}
