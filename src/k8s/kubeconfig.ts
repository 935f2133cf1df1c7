// The cluster to talk to and how: server, TLS and credentials, read from kubeconfig files or
// the pod's service account — the part of client-node's KubeConfig that the project's own
// clients (rest.ts) use, without loading client-node's KubeConfig.
//
// Why: client-node's config.js imports its generated API layer (gen/index.js: ~850 model
// classes, every API group, ~20 MB of JavaScript source that V8 keeps), so a process that only
// constructs a KubeConfig is ~50 MB larger: 93 MB resident after importing config.js against
// 42 MB for bare Node, with the controller's V8 flags; the compiled controller went from 99 MB
// to 58 MB after import without it. The controller and the agent need none of it. ClusterConfig
// reads the files with client-node's own parsers (config_types.js) and authenticates with its
// own authenticator classes (exec, token file, OIDC, …), both light modules loaded on their
// own; it only does what KubeConfig.applyToHTTPSOptions does around them. A cluster behind a
// proxy (proxy-url) is handed to a real KubeConfig, loaded then.
//
// Deep imports: client-node 1.4 has no `exports` map, so its dist/ modules are importable; the
// dependency is pinned to ~1.4.0, and a layout change fails the type check.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import yaml from 'js-yaml';
import type * as k8s from '@kubernetes/client-node';
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import { sharedAgent, shareConnections } from './http-agent.js';

/**
 * What the project's clients need of a cluster configuration. client-node's KubeConfig has it
 * too, so either can be passed (tests and `dev` use KubeConfig; the commands ClusterConfig).
 */
export interface ApiConfig {
  getCurrentCluster(): k8s.Cluster | null;
  /** Sets TLS options, credentials (headers) and the connection agent on request options. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

type Authenticator = {
  isAuthProvider(user: k8s.User): unknown;
  applyAuthentication(user: k8s.User, opts: https.RequestOptions): Promise<void>;
};

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Parsed {
  clusters: k8s.Cluster[];
  users: k8s.User[];
  contexts: k8s.Context[];
  currentContext: string;
}

export class ClusterConfig implements ApiConfig {
  private clusters: k8s.Cluster[] = [];
  private users: k8s.User[] = [];
  private contexts: k8s.Context[] = [];
  private currentContext = '';
  private authenticators: Promise<Authenticator[]> | undefined;
  private oidc: Promise<Authenticator> | undefined;
  private delegate: Promise<k8s.KubeConfig> | undefined;

  private constructor(parsed: Parsed) {
    Object.assign(this, parsed);
  }

  /** A kubeconfig file; relative certificate paths are relative to its directory. */
  static fromFile(file: string): ClusterConfig {
    return new ClusterConfig(readKubeconfig(file));
  }

  /**
   * Several kubeconfig files merged, as client-node's loadFromDefault merges a $KUBECONFIG
   * list: names must not repeat across files, and a later file's current-context wins.
   */
  static fromFiles(files: string[]): ClusterConfig {
    const [first, ...rest] = files;
    if (!first) throw new Error('no kubeconfig file given');
    const merged = readKubeconfig(first);
    for (const file of rest) {
      const next = readKubeconfig(file);
      if (next.currentContext) merged.currentContext = next.currentContext;
      addUnique(merged.clusters, next.clusters, 'cluster');
      addUnique(merged.users, next.users, 'user');
      addUnique(merged.contexts, next.contexts, 'context');
    }
    return new ClusterConfig(merged);
  }

  /**
   * The pod's service account, as client-node's loadFromCluster: the API server from
   * KUBERNETES_SERVICE_HOST/PORT, its CA, and the token file (read again every minute).
   */
  static inCluster(prefix = ''): ClusterConfig {
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT;
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
    const server = `${scheme}://${host && net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const namespaceFile = `${prefix}${SERVICE_ACCOUNT}/namespace`;
    const namespace = fs.existsSync(namespaceFile) ? fs.readFileSync(namespaceFile, 'utf8') : undefined;
    return new ClusterConfig({
      clusters: [{ name: 'inCluster', server, caFile: `${prefix}${SERVICE_ACCOUNT}/ca.crt`, skipTLSVerify: false }],
      users: [
        {
          name: 'inClusterUser',
          authProvider: { name: 'tokenFile', config: { tokenFile: `${prefix}${SERVICE_ACCOUNT}/token` } },
        },
      ],
      contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace }],
      currentContext: 'inClusterContext',
    });
  }

  getCurrentContext(): string {
    return this.currentContext;
  }

  getContextObject(name: string): k8s.Context | null {
    return this.contexts.find((c) => c.name === name) ?? null;
  }

  getCurrentCluster(): k8s.Cluster | null {
    const context = this.getContextObject(this.currentContext);
    return (context && this.clusters.find((c) => c.name === context.cluster)) ?? null;
  }

  getCurrentUser(): k8s.User | null {
    const context = this.getContextObject(this.currentContext);
    return (context && this.users.find((u) => u.name === context.user)) ?? null;
  }

  /** What KubeConfig.applyToHTTPSOptions does: TLS, credentials, and the (shared) agent. */
  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const cluster = this.getCurrentCluster();
    if (cluster?.proxyUrl) {
      // Proxy agents (HTTP CONNECT, SOCKS) are client-node's: let a real KubeConfig do it all.
      await (await this.viaClientNode()).applyToHTTPSOptions(opts);
      return;
    }
    const user = this.getCurrentUser();
    if (user) {
      if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false;
      if (cluster?.tlsServerName) opts.servername = cluster.tlsServerName;
      const ca = cluster ? fileOrData(cluster.caFile, cluster.caData) : undefined;
      if (ca) opts.ca = ca;
      const cert = fileOrData(user.certFile, user.certData);
      if (cert) opts.cert = cert;
      const key = fileOrData(user.keyFile, user.keyData);
      if (key) opts.key = key;
      const headers = (opts.headers ??= {}) as http.OutgoingHttpHeaders;
      if (user.impersonateUser != null) headers['Impersonate-User'] = user.impersonateUser;
      const authenticator = await this.authenticatorFor(user);
      if (authenticator) await authenticator.applyAuthentication(user, opts);
      if (user.token) headers.Authorization = `Bearer ${user.token}`;
      if (user.username) opts.auth = `${user.username}:${user.password}`;
    }
    const agentOptions: Record<string, unknown> = {
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      pfx: opts.pfx,
      passphrase: opts.passphrase,
      timeout: opts.timeout,
      servername: opts.servername,
    };
    if (opts.rejectUnauthorized !== undefined) agentOptions.rejectUnauthorized = opts.rejectUnauthorized;
    opts.agent = agentFor(cluster, agentOptions);
  }

  /**
   * client-node's authenticator for the user, tried in KubeConfig's order (Azure, GCP, exec,
   * token file, OIDC). Each of them needs `exec` or `auth-provider`; a user with neither
   * (a token, a client certificate) loads none.
   */
  private async authenticatorFor(user: k8s.User): Promise<Authenticator | undefined> {
    if (!user.exec && !user.authProvider) return undefined;
    this.authenticators ??= Promise.all([
      import('@kubernetes/client-node/dist/azure_auth.js').then((m) => new m.AzureAuth()),
      import('@kubernetes/client-node/dist/gcp_auth.js').then((m) => new m.GoogleCloudPlatformAuth()),
      import('@kubernetes/client-node/dist/exec_auth.js').then((m) => new m.ExecAuth()),
      import('@kubernetes/client-node/dist/file_auth.js').then((m) => new m.FileAuth()),
    ]);
    const found = (await this.authenticators).find((a) => a.isAuthProvider(user));
    if (found || user.authProvider?.name !== 'oidc') return found;
    // Last in KubeConfig's list, and the only one with a heavy dependency (openid-client).
    this.oidc ??= import('@kubernetes/client-node/dist/oidc_auth.js').then((m) => new m.OpenIDConnectAuth());
    return this.oidc;
  }

  private viaClientNode(): Promise<k8s.KubeConfig> {
    this.delegate ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      shareConnections(KubeConfig);
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: this.clusters,
        users: this.users,
        contexts: this.contexts,
        currentContext: this.currentContext,
      });
      return kc;
    });
    return this.delegate;
  }
}

/**
 * The cluster to talk to, in controller-runtime's order: an explicit path (the --kubeconfig
 * flag), $KUBECONFIG, the pod's service account when running in a cluster, ~/.kube/config.
 * Unlike client-node's loadFromDefault it never falls back to an unauthenticated localhost.
 */
export function loadKubeConfig(explicitPath?: string): ClusterConfig {
  const env = process.env;
  if (explicitPath) return ClusterConfig.fromFile(explicitPath);
  if (env.KUBECONFIG) return ClusterConfig.fromFiles(env.KUBECONFIG.split(path.delimiter).filter(Boolean));
  if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(`${SERVICE_ACCOUNT}/token`)) return ClusterConfig.inCluster();
  const home = path.join(os.homedir(), '.kube', 'config');
  if (fs.existsSync(home)) return ClusterConfig.fromFile(home);
  throw new Error('no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster');
}

function readKubeconfig(file: string): Parsed {
  const doc = (yaml.load(fs.readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  const dir = path.dirname(file);
  const absolute = (p: string | undefined) => (p && !path.isAbsolute(p) ? path.join(dir, p) : p);
  const clusters = newClusters(doc.clusters);
  for (const c of clusters) c.caFile = absolute(c.caFile);
  const users = newUsers(doc.users);
  for (const u of users) {
    u.certFile = absolute(u.certFile);
    u.keyFile = absolute(u.keyFile);
  }
  return { clusters, users, contexts: newContexts(doc.contexts), currentContext: (doc['current-context'] as string) ?? '' };
}

function addUnique<T extends { name: string }>(into: T[], from: T[], what: string): void {
  for (const item of from) {
    if (into.some((i) => i.name === item.name)) throw new Error(`Duplicate ${what}: ${item.name}`);
    into.push(item);
  }
}

/** A file's contents (read on every use, as client-node does), or base64 data. */
function fileOrData(file: string | undefined | null, data: string | undefined | null): Buffer | undefined {
  if (file) return fs.readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

/** KubeConfig's createAgent without proxies, keep-alive and shared (http-agent.ts). */
function agentFor(cluster: k8s.Cluster | null, options: Record<string, unknown>): http.Agent {
  const plain = cluster?.server?.startsWith('http:');
  if (plain && !cluster?.skipTLSVerify) {
    throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false');
  }
  return sharedAgent(cluster, options, (o) => (plain ? new http.Agent(o) : new https.Agent(o)));
}
