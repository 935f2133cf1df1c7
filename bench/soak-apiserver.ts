// Restarts the kube-apiserver of a LocalControlPlane the soak started itself (never the shared
// control plane of `npm test`): SIGKILL, a moment down, then the same binary with the same
// arguments (read from /proc/<pid>/cmdline), on the same port, certificates and etcd, so every
// client's kubeconfig stays valid. etcd keeps running: the objects survive, the watches and
// connections do not.
//
// LocalControlPlane knows only the process it launched first; the replacement is ours: we stop
// it before the control plane stops (stop()), kill it if this process exits, and record its
// PID in the control plane's pids.json so reapOrphanedControlPlanes() finds it after a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type { LocalControlPlane } from '../src/k8s/controlplane.js';

interface PidRecord {
  owner: number;
  processes: Array<{ pid: number; binary: string }>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readyz(server: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`${server}/readyz`, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

export class ApiServerRestarter {
  #child: ChildProcess | undefined;
  readonly #exitHook = () => {
    if (this.#child?.pid && this.#child.exitCode === null) {
      try {
        process.kill(this.#child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  restarts = 0;

  constructor(private readonly cp: LocalControlPlane) {
    process.on('exit', this.#exitHook);
  }

  #pidsFile(): string {
    return path.join(this.cp.workDir, 'pids.json');
  }

  /** The running kube-apiserver: its PID, binary and arguments. */
  #current(): { pid: number; binary: string; args: string[] } {
    const record = JSON.parse(fs.readFileSync(this.#pidsFile(), 'utf8')) as PidRecord;
    const entry = record.processes.find((p) => path.basename(p.binary) === 'kube-apiserver');
    if (!entry) throw new Error(`no kube-apiserver in ${this.#pidsFile()}`);
    const argv = fs.readFileSync(`/proc/${entry.pid}/cmdline`, 'utf8').split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    if (argv[0] !== entry.binary) throw new Error(`PID ${entry.pid} runs ${argv[0]}, not ${entry.binary}`);
    return { pid: entry.pid, binary: entry.binary, args: argv.slice(1) };
  }

  #record(oldPid: number, newPid: number): void {
    const record = JSON.parse(fs.readFileSync(this.#pidsFile(), 'utf8')) as PidRecord;
    for (const p of record.processes) if (p.pid === oldPid) p.pid = newPid;
    fs.writeFileSync(this.#pidsFile(), JSON.stringify(record));
  }

  /**
   * Kills the API server, waits `downMs`, starts it again and waits until it is ready
   * (at most `readyTimeoutMs`). Returns how long it took from the kill to ready again.
   */
  async restart(downMs: number, readyTimeoutMs = 90_000): Promise<{ readyAfterMs: number }> {
    const { pid, binary, args } = this.#current();
    const killed = performance.now();
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(50);
    if (alive(pid)) throw new Error(`kube-apiserver (PID ${pid}) did not die`);
    await sleep(downMs);
    const logFile = path.join(this.cp.workDir, 'kube-apiserver.log');
    const out = fs.openSync(logFile, 'a');
    const child = spawn(binary, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.#child = child;
    this.#record(pid, child.pid!);
    this.restarts++;
    const deadline = performance.now() + readyTimeoutMs;
    while (performance.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`the restarted kube-apiserver exited (${child.exitCode}); see ${logFile}`);
      if (await readyz(this.cp.server, this.cp.token)) return { readyAfterMs: performance.now() - killed };
      await sleep(200);
    }
    throw new Error(`the restarted kube-apiserver was not ready within ${readyTimeoutMs} ms; see ${logFile}`);
  }

  /** Stops the replacement API server, if any (before the control plane stops etcd). */
  async stop(): Promise<void> {
    process.off('exit', this.#exitHook);
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
