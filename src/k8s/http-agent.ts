// Connection reuse for every API client in the process.
//
// @kubernetes/client-node 1.4 makes a new https.Agent for every request (KubeConfig's private
// createAgent, called by applySecurityAuthentication for generated clients and by
// applyToHTTPSOptions for watches), so no connection is ever reused: each API call pays a TCP
// and TLS handshake, on both sides (kubernetes-client/javascript#2893). Measured against the
// local control plane: 400 creates with 32 in flight took 6.2 s that way and 2.0 s with one
// keep-alive agent.
//
// sharedAgent() hands out one keep-alive agent per distinct server and TLS options (CA, client
// certificate, verification, SNI, proxy). Credentials sent as headers (bearer tokens) are per
// request, so clients with different tokens may share connections. ClusterConfig
// (kubeconfig.ts) takes its agents from there; shareConnections() makes client-node's
// KubeConfig class do the same, for code that uses its generated API classes (the CLI, `dev`,
// tests). This module does not import client-node: the class is passed in by whoever has
// loaded it (the controller and the agent never do; see kubeconfig.ts).
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';

type ClusterLike = Pick<k8s.Cluster, 'server' | 'proxyUrl' | 'skipTLSVerify'>;
type CreateAgent = (cluster: k8s.Cluster | null, options: Record<string, unknown>) => unknown;

const shared = new Map<string, unknown>();
const patched = new WeakSet<object>();

function optionKey(cluster: ClusterLike | null, options: Record<string, unknown>): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([cluster?.server ?? '', cluster?.proxyUrl ?? '', cluster?.skipTLSVerify ?? false]));
  for (const name of Object.keys(options).sort()) {
    const value = options[name];
    if (value === undefined) continue;
    hash.update(`\0${name}=`);
    hash.update(Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }
  return hash.digest('hex');
}

/**
 * The process's agent for this server and these TLS options: made once by `create` (which
 * gets the options with keepAlive set), then handed out again.
 */
export function sharedAgent<A>(
  cluster: ClusterLike | null,
  options: Record<string, unknown>,
  create: (options: Record<string, unknown>) => A,
): A {
  const key = optionKey(cluster, options);
  let agent = shared.get(key) as A | undefined;
  if (!agent) {
    agent = create({ ...options, keepAlive: true });
    shared.set(key, agent);
  }
  return agent;
}

/** Makes client-node's KubeConfig class hand out the shared keep-alive agents (idempotent). */
export function shareConnections(kubeConfigClass: typeof k8s.KubeConfig): void {
  const proto = kubeConfigClass.prototype as unknown as { createAgent: CreateAgent };
  if (patched.has(proto)) return;
  patched.add(proto);
  const original = proto.createAgent;
  proto.createAgent = function (this: k8s.KubeConfig, cluster, options) {
    return sharedAgent(cluster, options, (withKeepAlive) => original.call(this, cluster, withKeepAlive));
  };
}
