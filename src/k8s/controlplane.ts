// A real local Kubernetes control plane (etcd + kube-apiserver, optionally kube-scheduler)
// for tests and the `dev` command. The binaries come from hack/build-controlplane.sh, which
// builds them from pinned Go modules into a cache outside the repository.
//
// Everything started here is tracked by PID and stopped by `stop()`, on SIGINT/SIGTERM, and on
// process exit. Each instance writes its PIDs into its work directory, so a later start can
// reap what a killed run (SIGKILL, OOM) left behind.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger, type Logger } from '../log.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORKDIR_PREFIX = 'apqn-controlplane-';

export interface ControlPlaneOptions {
  /** Directory holding etcd, kube-apiserver, kubectl (default: build or find them). */
  binDir?: string;
  /** Also start a kube-scheduler against the API server. */
  scheduler?: boolean;
  /** Where to write the admin kubeconfig (default: inside the work directory). */
  kubeconfigPath?: string;
  /** Extra kube-apiserver flags. */
  apiserverFlags?: string[];
  log?: Logger;
  /** Stop on SIGINT/SIGTERM and re-raise the signal (default true). A caller that stops other
   *  things first (`dev`: agents, controller, then the control plane) handles signals itself. */
  handleSignals?: boolean;
}

interface Managed {
  name: string;
  child: ChildProcess;
  logFile: string;
}

/** Runs hack/build-controlplane.sh (a no-op when the binaries are cached) and returns their dir. */
export function ensureControlPlaneBinaries(log: Logger = logger('controlplane')): string {
  if (process.env.APQN_CONTROLPLANE_BIN) return process.env.APQN_CONTROLPLANE_BIN;
  const script = path.join(repoRoot, 'hack/build-controlplane.sh');
  log.info('checking control-plane binaries (the first build takes several minutes)');
  // Progress goes to our stderr as it happens; the bin dir is the last stdout line.
  const result = spawnSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`building the local control plane failed (bash ${script} exited ${result.status})`);
  }
  const lines = result.stdout.trim().split('\n');
  return lines[lines.length - 1]!.trim();
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The binary a PID runs, or '' — so a reused PID is never killed by mistake. */
function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  } catch {
    return '';
  }
}

/**
 * Stops what earlier runs left behind: work directories whose owner process is gone.
 * Only processes whose recorded binary matches are signalled.
 */
export function reapOrphanedControlPlanes(log: Logger = logger('controlplane')): void {
  const tmp = os.tmpdir();
  for (const entry of fs.readdirSync(tmp)) {
    if (!entry.startsWith(WORKDIR_PREFIX)) continue;
    const dir = path.join(tmp, entry);
    const pidsFile = path.join(dir, 'pids.json');
    let record: { owner: number; processes: Array<{ pid: number; binary: string }> };
    try {
      record = JSON.parse(fs.readFileSync(pidsFile, 'utf8'));
    } catch {
      continue; // not ours, or still being written by a live start
    }
    if (isAlive(record.owner)) continue;
    for (const p of record.processes) {
      if (isAlive(p.pid) && commandOf(p.pid) === p.binary) {
        log.warn('stopping a process left by an earlier run', { pid: p.pid, binary: p.binary });
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function httpsGet(url: string, token: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function httpGet(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

export class LocalControlPlane {
  readonly workDir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly token: string;
  readonly binDir: string;
  private readonly processes: Managed[] = [];
  private readonly log: Logger;
  private stopped = false;
  private readonly signalHandler = (signal: NodeJS.Signals) => {
    this.log.info('signal received, stopping the control plane', { signal });
    void this.stop().finally(() => process.kill(process.pid, signal));
  };
  private readonly exitHandler = () => this.killAllSync();

  private constructor(binDir: string, workDir: string, port: number, kubeconfigPath: string, log: Logger) {
    this.binDir = binDir;
    this.workDir = workDir;
    this.server = `https://127.0.0.1:${port}`;
    this.kubeconfigPath = kubeconfigPath;
    this.token = randomBytes(24).toString('hex');
    this.log = log;
  }

  /** Starts etcd and kube-apiserver (and kube-scheduler if asked), ready for requests. */
  static async start(options: ControlPlaneOptions = {}): Promise<LocalControlPlane> {
    const log = options.log ?? logger('controlplane');
    reapOrphanedControlPlanes(log);
    const binDir = options.binDir ?? ensureControlPlaneBinaries(log);
    for (const b of ['etcd', 'kube-apiserver', 'kubectl']) {
      if (!fs.existsSync(path.join(binDir, b))) throw new Error(`${b} not found in ${binDir}`);
    }
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), WORKDIR_PREFIX));
    const port = await freePort();
    const kubeconfigPath = options.kubeconfigPath ?? path.join(workDir, 'kubeconfig');
    const cp = new LocalControlPlane(binDir, workDir, port, kubeconfigPath, log);
    if (options.handleSignals !== false) {
      process.once('SIGINT', cp.signalHandler);
      process.once('SIGTERM', cp.signalHandler);
    }
    process.on('exit', cp.exitHandler);
    try {
      await cp.startEtcd();
      await cp.startApiserver(port, options.apiserverFlags ?? []);
      cp.writeKubeconfig();
      if (options.scheduler) await cp.startScheduler();
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  private recordPids(): void {
    const record = {
      owner: process.pid,
      processes: this.processes.map((p) => ({ pid: p.child.pid, binary: path.join(this.binDir, p.name) })),
    };
    fs.writeFileSync(path.join(this.workDir, 'pids.json'), JSON.stringify(record));
  }

  private launch(name: string, args: string[]): Managed {
    const logFile = path.join(this.workDir, `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = spawn(path.join(this.binDir, name), args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const managed = { name, child, logFile };
    this.processes.push(managed);
    this.recordPids();
    child.on('exit', (code, signal) => {
      if (!this.stopped) this.log.error(`${name} exited unexpectedly`, { code, signal, log: logFile });
    });
    this.log.debug(`${name} started`, { pid: child.pid });
    return managed;
  }

  /** The last lines of a component's log, for error messages. */
  tail(name: string, lines = 20): string {
    const managed = this.processes.find((p) => p.name === name);
    if (!managed) return '';
    try {
      return fs.readFileSync(managed.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  private async waitOrDie(name: string, what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const managed = this.processes.find((p) => p.name === name)!;
    try {
      await waitFor(
        what,
        async () => {
          if (managed.child.exitCode !== null) throw new Error(`${name} exited (${managed.child.exitCode})`);
          return (await probe()) ? true : undefined;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- last lines of ${name}'s log ---\n${this.tail(name)}`);
    }
  }

  private etcdUrl = '';

  private async startEtcd(): Promise<void> {
    const clientPort = await freePort();
    const peerPort = await freePort();
    this.etcdUrl = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    this.launch('etcd', [
      '--name=apqn',
      `--data-dir=${path.join(this.workDir, 'etcd')}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=apqn=${peerUrl}`,
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ]);
    await this.waitOrDie('etcd', 'etcd /health', async () => (await httpGet(`${this.etcdUrl}/health`)) === 200, 30_000);
    this.log.info('etcd ready', { url: this.etcdUrl });
  }

  private async startApiserver(port: number, extraFlags: string[]): Promise<void> {
    const certDir = path.join(this.workDir, 'certs');
    fs.mkdirSync(certDir, { recursive: true });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = path.join(this.workDir, 'sa.key');
    const saPub = path.join(this.workDir, 'sa.pub');
    fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    // The admin identity: a static token in group system:masters (RBAC bypass), like a
    // cluster-admin kubeconfig. Written 0600 and removed with the work directory.
    const tokens = path.join(this.workDir, 'tokens.csv');
    fs.writeFileSync(tokens, `${this.token},apqn-admin,apqn-admin-uid,"system:masters"\n`, { mode: 0o600 });
    this.launch('kube-apiserver', [
      `--etcd-servers=${this.etcdUrl}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${certDir}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--authorization-mode=RBAC',
      `--token-auth-file=${tokens}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=0',
      ...extraFlags,
    ]);
    await this.waitOrDie(
      'kube-apiserver',
      'kube-apiserver /readyz',
      async () => (await httpsGet(`${this.server}/readyz`, this.token)).status === 200,
      90_000,
    );
    await this.waitOrDie(
      'kube-apiserver',
      'namespace default',
      async () => (await httpsGet(`${this.server}/api/v1/namespaces/default`, this.token)).status === 200,
      30_000,
    );
    this.log.info('kube-apiserver ready', { server: this.server });
  }

  private writeKubeconfig(): void {
    const config = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: apqn-local',
      '  cluster:',
      `    server: ${this.server}`,
      // Loopback-only dev/test cluster whose serving certificate the apiserver made itself.
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: apqn-admin',
      '  user:',
      `    token: ${this.token}`,
      'contexts:',
      '- name: apqn-local',
      '  context: { cluster: apqn-local, user: apqn-admin }',
      'current-context: apqn-local',
      '',
    ].join('\n');
    fs.mkdirSync(path.dirname(this.kubeconfigPath), { recursive: true });
    fs.writeFileSync(this.kubeconfigPath, config, { mode: 0o600 });
  }

  private async startScheduler(): Promise<void> {
    const bin = path.join(this.binDir, 'kube-scheduler');
    if (!fs.existsSync(bin)) throw new Error(`kube-scheduler not found in ${this.binDir}`);
    const port = await freePort();
    this.launch('kube-scheduler', [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--authentication-kubeconfig=${this.kubeconfigPath}`,
      `--authorization-kubeconfig=${this.kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--v=1',
    ]);
    await this.waitOrDie(
      'kube-scheduler',
      'kube-scheduler /readyz',
      async () => (await httpsGet(`https://127.0.0.1:${port}/readyz`, this.token)).status === 200,
      60_000,
    );
    this.log.info('kube-scheduler ready');
  }

  /** Runs kubectl against this control plane; returns its output (throws on failure). */
  kubectl(args: string[], input?: string): string {
    const result = spawnSync(path.join(this.binDir, 'kubectl'), args, {
      input,
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: this.kubeconfigPath },
    });
    if (result.status !== 0) {
      throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  }

  private killAllSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of [...this.processes].reverse()) {
      if (p.child.exitCode === null && p.child.pid) {
        try {
          process.kill(p.child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Stops everything it started (SIGTERM, then SIGKILL), API server first, and removes its files. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.off('SIGINT', this.signalHandler);
    process.off('SIGTERM', this.signalHandler);
    process.off('exit', this.exitHandler);
    // Reverse start order: scheduler, apiserver, then etcd.
    for (const p of [...this.processes].reverse()) {
      await stopProcess(p.child, 10_000);
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
    this.log.info('control plane stopped');
  }
}

async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
