// A TCP proxy in front of the test API server that a test can cut and restore, to see how
// watches behave when the server goes away (connections reset, then refused) and comes back.
import * as net from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { kubeConfig } from '../support/cluster.js';

export class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<CuttableProxy> {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const proxy = new CuttableProxy(port, target);
    await proxy.restore();
    return proxy;
  }

  /** Accepts connections again (on the same port). */
  async restore(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Resets every open connection and refuses new ones until restore(). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }

  async close(): Promise<void> {
    await this.cut();
  }

  /** The test cluster's kubeconfig, pointed at this proxy. */
  kubeConfig(): k8s.KubeConfig {
    const kc = kubeConfig();
    const cluster = kc.getCurrentCluster()!;
    const clusters = kc.clusters.map((c) =>
      c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${this.port}` } : c,
    );
    const proxied = new k8s.KubeConfig();
    proxied.loadFromOptions({
      clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    return proxied;
  }
}

/** The test API server's host and port. */
export function apiServerAddress(): { host: string; port: number } {
  const url = new URL(kubeConfig().getCurrentCluster()!.server);
  return { host: url.hostname, port: Number(url.port) };
}
