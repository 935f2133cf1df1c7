// /healthz and /readyz for the agent's pod probes (the /metrics exposition comes with the
// metrics issue). Liveness: the loop passed recently. Readiness: it read its APNodeState and
// wrote a status.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthSource {
  isHealthy(): boolean;
  isReady(): boolean;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(source: HealthSource, port: number, host = '0.0.0.0'): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(ok ? 'ok\n' : 'not ok\n');
    };
    if (path === '/healthz' || path === '/livez') return answer(source.isHealthy());
    if (path === '/readyz') return answer(source.isReady());
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
