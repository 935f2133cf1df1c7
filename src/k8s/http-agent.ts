// Connection reuse for every API client in the process.
//
// @kubernetes/client-node 1.4 makes a new https.Agent for every request (KubeConfig's private
// createAgent, called by applySecurityAuthentication for generated clients and by
// applyToHTTPSOptions for watches), so no connection is ever reused: each API call pays a TCP
// and TLS handshake, on both sides (kubernetes-client/javascript#2893). Measured against the
// local control plane: 400 creates with 32 in flight took 6.2 s that way and 2.0 s with one
// keep-alive agent.
//
// shareConnections() makes createAgent hand out one keep-alive agent per distinct server and
// TLS options (CA, client certificate, verification, SNI, proxy). Credentials sent as headers
// (bearer tokens) are per request, so clients with different tokens may share connections.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';

type CreateAgent = (cluster: k8s.Cluster | null, options: Record<string, unknown>) => unknown;

const shared = new Map<string, unknown>();
let installed = false;

function optionKey(cluster: k8s.Cluster | null, options: Record<string, unknown>): string {
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

/** Installs the shared keep-alive agents (idempotent). */
export function shareConnections(): void {
  if (installed) return;
  installed = true;
  const proto = k8s.KubeConfig.prototype as unknown as { createAgent: CreateAgent };
  const original = proto.createAgent;
  proto.createAgent = function (this: k8s.KubeConfig, cluster, options) {
    const key = optionKey(cluster, options);
    let agent = shared.get(key);
    if (!agent) {
      agent = original.call(this, cluster, { ...options, keepAlive: true });
      shared.set(key, agent);
    }
    return agent;
  };
}
