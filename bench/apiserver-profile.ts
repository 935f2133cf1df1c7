// The API server's own CPU profile while the operator works: kube-apiserver serves
// /debug/pprof/profile (the bench turns --profiling back on for it), kubectl fetches it with the
// bench's admin credentials, and `go tool pprof -top -cum` (Go is on every machine that builds
// the control plane) summarises it by cumulative time (the Go runtime and GC dominate a flat view). Opt-in (APQN_BENCH_APISERVER_PROFILE=SECONDS): the profiler costs the API
// server a little CPU, and the floor runs without it.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LocalControlPlane } from '../src/k8s/controlplane.js';

/** Seconds to profile for, from APQN_BENCH_APISERVER_PROFILE; undefined when not asked for. */
export function apiserverProfileSeconds(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.APQN_BENCH_APISERVER_PROFILE;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 300) throw new Error(`APQN_BENCH_APISERVER_PROFILE: whole seconds 1..300, not ${JSON.stringify(raw)}`);
  return n;
}

/** Starts a profile of `seconds`; resolves with `go tool pprof -top` of it, or why there is none. */
export function profileApiserver(cp: LocalControlPlane, seconds: number, file: string, nodes = 60): Promise<string> {
  return new Promise((resolve) => {
    const out = fs.openSync(file, 'w');
    const kubectl = spawn(
      path.join(cp.binDir, 'kubectl'),
      ['--kubeconfig', cp.kubeconfigPath, 'get', '--raw', `/debug/pprof/profile?seconds=${seconds}`, `--request-timeout=${seconds + 30}s`],
      { stdio: ['ignore', out, 'pipe'] },
    );
    let stderr = '';
    kubectl.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    kubectl.on('close', (code) => {
      fs.closeSync(out);
      if (code !== 0) return resolve(`no API server profile: kubectl exited ${code}: ${stderr.trim()}`);
      const top = spawnSync('go', ['tool', 'pprof', '-top', '-cum', `-nodecount=${nodes}`, file], { encoding: 'utf8' });
      if (top.status !== 0) return resolve(`no API server profile summary (go tool pprof: ${top.error?.message ?? top.stderr.trim()}); the profile is ${file}`);
      resolve(top.stdout.trim());
    });
  });
}
