/**
 * Test hosts in network namespaces, so a scenario can run workers "on several machines" and cut
 * one off from the database:
 *
 *   initial namespace                      namespace bgtXh0 ... bgtXh(n-1)
 *   bridge bgtXbr 10.200.X.1/24  ── veth ── eth0 10.200.X.(10+i)/24
 *
 * The database side is the bridge address (`serverAddress`): start a private server with
 * `{ host: net.serverAddress }` and every host reaches it, while the test process reaches it too.
 * The namespaces have no default route, so they can reach nothing but this subnet.
 *
 * `cut` drops every packet both ways on the host's veth pair (a `blackhole` qdisc on each end):
 * links stay up, nothing is refused or reset, so peers see only silence, as with a pulled cable
 * further along. `cut(host, 'down')` takes the link down instead. Needs root (CAP_NET_ADMIN) and
 * iproute2 (`ip`, `tc`); `netnsAvailable()` probes for real and says why not.
 */
import { execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { AVAILABLE, isRoot, killTree, spawnTracked, track, treeOfChild, unavailable, untrack, type Availability } from './processes.js';
import type { Leftover } from './leftovers.js';

export interface NetHost {
  index: number;
  /** The namespace's name (`ip netns exec NAME …`). */
  name: string;
  /** Its address on the test subnet. */
  address: string;
  /** Its end of the veth pair in the initial namespace, a port of the bridge. */
  hostLink: string;
}

export type CutMode = 'drop' | 'down';

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default 'pipe'. */
  stdio?: StdioOptions;
}

export interface NetHosts {
  /** The subnet, e.g. 10.200.37.0/24. */
  readonly subnet: string;
  /** The bridge's address in the initial namespace: where servers listen for the hosts. */
  readonly serverAddress: string;
  readonly hosts: readonly NetHost[];
  /** Cuts `host` off the subnet (see the module comment for the modes). */
  cut(host: number, mode?: CutMode): void;
  heal(host: number): void;
  isCut(host: number): boolean;
  /** Starts `cmd` inside the host's namespace; tracked and killed by `destroy()` if still running. */
  exec(host: number, cmd: string, args?: string[], opts?: ExecOptions): ChildProcess;
  /** Runs `cmd` inside the host's namespace to its end (killed after `timeoutMs`). */
  run(host: number, cmd: string, args?: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** A TCP connect from inside the host's namespace: 'connected', 'refused' (or another error) or 'timeout'. */
  probeTcp(host: number, address: string, port: number, timeoutMs?: number): Promise<'connected' | 'refused' | 'timeout'>;
  /** Kills what `exec` started and still runs, and removes the namespaces, links and bridge. */
  destroy(): Promise<void>;
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

function tc(args: string[]): void {
  try {
    execFileSync('tc', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    throw new Error(`tc ${args.join(' ')} failed: ${(e.stderr?.toString() ?? e.message).trim()}`, { cause: err });
  }
}

let probed: Availability | null = null;

/** Whether namespaces, veth pairs, a bridge and the blackhole qdisc work here (probed once, for real). */
export function netnsAvailable(): Availability {
  if (probed) return probed;
  if (process.platform !== 'linux') return (probed = unavailable(`network namespaces need Linux (this is ${process.platform})`));
  if (!isRoot()) return (probed = unavailable('network namespaces need root (CAP_NET_ADMIN); the tests run as a normal user'));
  const name = `bgtprobe${process.pid % 100000}`;
  const link = `bgtpr${process.pid % 100000}`;
  const ns: Leftover = { kind: 'netns', name };
  const hostLink: Leftover = { kind: 'link', name: link };
  try {
    track(ns);
    track(hostLink);
    ip(['netns', 'add', name]);
    ip(['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
    ip(['link', 'set', `${link}p`, 'netns', name]);
    tc(['qdisc', 'add', 'dev', link, 'root', 'blackhole']);
    tc(['-n', name, 'qdisc', 'add', 'dev', `${link}p`, 'root', 'blackhole']);
    probed = AVAILABLE;
  } catch (err) {
    probed = unavailable(`cannot build a network namespace with a veth pair and a blackhole qdisc here: ${(err as Error).message}`);
  } finally {
    for (const [l, args] of [
      [hostLink, ['link', 'delete', link]],
      [ns, ['netns', 'delete', name]],
    ] as const) {
      try {
        ip([...args]);
      } catch {
        // Never made (the probe failed before it).
      }
      untrack(l);
    }
  }
  return probed;
}

/** Claims a free 10.200.X.0/24: creating the bridge named after X is atomic among concurrent runs. */
function claimSubnet(): number {
  const inUse = ip(['-4', '-o', 'addr']) + ip(['-4', 'route']);
  const candidates = Array.from({ length: 254 }, (_, i) => i + 1).filter((x) => !inUse.includes(`10.200.${x}.`));
  for (let tries = 0; tries < 20 && candidates.length > 0; tries++) {
    const x = candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0]!;
    const bridge = `bgt${x}br`;
    track({ kind: 'link', name: bridge });
    try {
      ip(['link', 'add', bridge, 'type', 'bridge']);
      return x;
    } catch {
      untrack({ kind: 'link', name: bridge });
    }
  }
  throw new Error('no free 10.200.X.0/24 subnet for test hosts (20 tries)');
}

/** Creates `count` hosts (namespaces) on a fresh private subnet, with the bridge as the server side. */
export async function createNetHosts(count: number): Promise<NetHosts> {
  if (!Number.isInteger(count) || count < 1 || count > 50) throw new Error(`createNetHosts: count must be an integer from 1 to 50, got ${count}`);
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(`cannot create network namespaces: ${avail.reason}`);
  const x = claimSubnet();
  const bridge = `bgt${x}br`;
  const made: Leftover[] = [{ kind: 'link', name: bridge }];
  const hosts: NetHost[] = [];
  const children = new Set<ChildProcess>();
  const cutModes = new Map<number, CutMode>();

  const removeAll = () => {
    for (const l of made.splice(0).reverse()) {
      try {
        if (l.kind === 'netns') ip(['netns', 'delete', l.name]);
        if (l.kind === 'link') ip(['link', 'delete', l.name]);
      } catch {
        // Deleting the bridge or a namespace also took the veth ends with it.
      }
      untrack(l);
    }
  };

  try {
    ip(['addr', 'add', `10.200.${x}.1/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    for (let i = 0; i < count; i++) {
      const name = `bgt${x}h${i}`;
      const hostLink = `bgt${x}v${i}`;
      const peer = `bgt${x}p${i}`;
      const address = `10.200.${x}.${10 + i}`;
      for (const l of [{ kind: 'netns', name }, { kind: 'link', name: hostLink }] as Leftover[]) {
        track(l);
        made.push(l);
      }
      ip(['netns', 'add', name]);
      ip(['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peer]);
      ip(['link', 'set', peer, 'netns', name]);
      ip(['-n', name, 'link', 'set', peer, 'name', 'eth0']);
      ip(['-n', name, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', name, 'link', 'set', 'eth0', 'up']);
      ip(['-n', name, 'link', 'set', 'lo', 'up']);
      ip(['link', 'set', hostLink, 'master', bridge]);
      ip(['link', 'set', hostLink, 'up']);
      hosts.push({ index: i, name, address, hostLink });
    }
  } catch (err) {
    removeAll();
    throw err;
  }

  const hostAt = (i: number): NetHost => {
    const h = hosts[i];
    if (!h) throw new Error(`no test host ${i}: there are ${hosts.length} (0 to ${hosts.length - 1})`);
    return h;
  };

  const self: NetHosts = {
    subnet: `10.200.${x}.0/24`,
    serverAddress: `10.200.${x}.1`,
    hosts,
    cut(i, mode = 'drop') {
      const h = hostAt(i);
      if (cutModes.has(i)) throw new Error(`test host ${i} is already cut (${cutModes.get(i)})`);
      if (mode === 'drop') {
        tc(['qdisc', 'add', 'dev', h.hostLink, 'root', 'blackhole']);
        tc(['-n', h.name, 'qdisc', 'add', 'dev', 'eth0', 'root', 'blackhole']);
      } else {
        ip(['link', 'set', h.hostLink, 'down']);
      }
      cutModes.set(i, mode);
    },
    heal(i) {
      const h = hostAt(i);
      const mode = cutModes.get(i);
      if (mode === 'drop') {
        tc(['qdisc', 'del', 'dev', h.hostLink, 'root']);
        tc(['-n', h.name, 'qdisc', 'del', 'dev', 'eth0', 'root']);
      } else if (mode === 'down') {
        ip(['link', 'set', h.hostLink, 'up']);
      }
      cutModes.delete(i);
    },
    isCut: (i) => cutModes.has(hostAt(i).index),
    exec(i, cmd, args = [], opts = {}) {
      const h = hostAt(i);
      // `ip netns exec` execs in place, so the pid is the command's own.
      const child = spawnTracked('ip', ['netns', 'exec', h.name, cmd, ...args], {
        env: opts.env ?? process.env,
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        stdio: opts.stdio ?? 'pipe',
      });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    run(i, cmd, args = [], timeoutMs = 10_000) {
      const child = self.exec(i, cmd, args);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => void killTree(child).catch(() => {}), timeoutMs);
      return new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    async probeTcp(i, address, port, timeoutMs = 2_000) {
      const script = `const s = require('node:net').connect(${Number(port)}, ${JSON.stringify(address)});
        s.setTimeout(${Number(timeoutMs)}, () => { console.log('timeout'); process.exit(0); });
        s.on('connect', () => { console.log('connected'); process.exit(0); });
        s.on('error', (e) => { console.log('refused ' + e.code); process.exit(0); });`;
      const r = await self.run(i, process.execPath, ['-e', script], timeoutMs + 10_000);
      const word = r.stdout.trim().split(/\s/)[0];
      if (word === 'connected' || word === 'refused' || word === 'timeout') return word;
      throw new Error(`TCP probe from test host ${i} to ${address}:${port} printed nothing useful (exit ${r.code}): ${r.stdout}${r.stderr}`);
    },
    async destroy() {
      for (const c of [...children]) if (treeOfChild(c).length > 0) await killTree(c);
      children.clear();
      removeAll();
      hosts.length = 0;
    },
  };
  return self;
}
