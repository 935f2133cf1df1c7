// A TCP relay in front of the API server, one per operator component (each agent, each
// controller replica), so the soak can cut that component's connections the way a network or
// a crash does:
//   cut()    resets every open connection (watches and requests in flight end with a reset);
//            new connections are refused for a while, then accepted again — a watch cut;
//   fence()  resets every connection and refuses new ones until reopen(), synchronously, so a
//            component "killed" at a step cannot write anything more: a crash as the API
//            server sees it (the in-process component is stopped afterwards).
// TLS goes end to end through the relay (the local control plane's kubeconfig skips
// verification), so the relay never sees a request.
import * as net from 'node:net';
import * as k8s from '@kubernetes/client-node';

export class Relay {
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();
  #epoch = 0;
  #fenced = false;
  #stopped = false;
  /** Connections reset by cut() or fence(), for the report. */
  resets = 0;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** A relay on a free loopback port to the API server of `kc`. */
  static async start(kc: k8s.KubeConfig): Promise<Relay> {
    const server = new URL(kc.getCurrentCluster()!.server);
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const relay = new Relay(port, { host: server.hostname, port: Number(server.port || 443) });
    await relay.reopen();
    return relay;
  }

  /** `base`'s users and contexts, its cluster reached through this relay. */
  kubeConfig(base: k8s.KubeConfig): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: base.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${this.port}` })),
      users: base.users,
      contexts: base.contexts,
      currentContext: base.currentContext,
    });
    return kc;
  }

  get open(): boolean {
    return this.#server !== undefined;
  }

  /** Accepts connections (again), on the same port. */
  async reopen(): Promise<void> {
    if (this.#server || this.#stopped) return;
    this.#fenced = false;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Refuses new connections and resets the open ones, at once (synchronous), until reopen(). */
  fence(): void {
    this.#fenced = true;
    this.#epoch++;
    this.#close();
  }

  /** A watch cut: every connection reset; new ones refused for `refuseMs`, then accepted again
   *  (unless the relay was fenced meanwhile; a fenced relay is left alone). */
  async cut(refuseMs: number): Promise<void> {
    if (this.#fenced || this.#stopped) return; // a fenced component stays cut off
    const epoch = ++this.#epoch;
    this.#close();
    if (refuseMs > 0) await new Promise((resolve) => setTimeout(resolve, refuseMs));
    if (epoch === this.#epoch) await this.reopen();
  }

  #close(): void {
    const server = this.#server;
    this.#server = undefined;
    server?.close();
    for (const s of this.#sockets) {
      s.resetAndDestroy();
      this.resets++;
    }
    this.#sockets.clear();
  }

  /** For good. */
  stop(): void {
    this.#stopped = true;
    this.fence();
  }
}
