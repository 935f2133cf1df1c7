// Plain requests and watches (src/k8s/rest.ts) against a scripted local HTTP server: JSON both
// ways, errors as ApiException, compressed responses, and watch streams cut anywhere.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { ApiException, describeError, isNotFound, statusCode } from '../../src/k8s/client.js';
import { ClusterConfig } from '../../src/k8s/kubeconfig.js';
import { apiRequest, watchRequest, type WatchError } from '../../src/k8s/rest.js';

interface Seen {
  method?: string;
  url?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server answering every request with `handler`; returns a ClusterConfig for it. */
async function serve(t: ExecutionContext, handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const s = { method: req.method, url: req.url, headers: req.headers, body };
      seen.push(s);
      handler(req, res, s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-rest-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config');
  const { port } = server.address() as { port: number };
  fs.writeFileSync(
    file,
    JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'tok' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return { config: ClusterConfig.fromFile(file), seen };
}

test('a request sends JSON with credentials and query, and returns the parsed answer', async (t) => {
  const { config, seen } = await serve(t, (_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end('{"ok":true}');
  });
  const answer = await apiRequest(config, '/apis/g/v1/namespaces/ns/things/a', {
    method: 'PATCH',
    body: { spec: { n: 1 } },
    contentType: 'application/merge-patch+json',
    query: { fieldManager: 'me', force: true, dryRun: undefined },
  });
  t.deepEqual(answer, { ok: true });
  t.is(seen[0]!.method, 'PATCH');
  t.is(seen[0]!.url, '/apis/g/v1/namespaces/ns/things/a?fieldManager=me&force=true');
  t.is(seen[0]!.headers.authorization, 'Bearer tok');
  t.is(seen[0]!.headers['content-type'], 'application/merge-patch+json');
  t.is(seen[0]!.body, '{"spec":{"n":1}}');
});

test('an error status is an ApiException with the status text as body', async (t) => {
  const { config } = await serve(t, (_req, res) => {
    res.statusCode = 404;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'things "a" not found', code: 404 }));
  });
  const err = await t.throwsAsync(apiRequest(config, '/apis/g/v1/things/a'));
  t.true(err instanceof ApiException);
  t.is(statusCode(err), 404);
  t.true(isNotFound(err));
  t.is(describeError(err), '404 NotFound: things "a" not found');
});

test('a compressed answer is decompressed', async (t) => {
  const items = Array.from({ length: 2000 }, (_, i) => ({ metadata: { name: `n${i}` } }));
  const { config, seen } = await serve(t, (_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Encoding', 'gzip');
    res.end(zlib.gzipSync(JSON.stringify({ items })));
  });
  t.deepEqual(await apiRequest(config, '/api/v1/nodes'), { items });
  t.regex(String(seen[0]!.headers['accept-encoding']), /gzip/);
});

test('a watch delivers events cut across chunks, skips lines that are not JSON, and ends once', async (t) => {
  const { config, seen } = await serve(t, (_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    const stream = '{"type":"ADDED","object":{"metadata":{"name":"é"}}}\nnot json\n{"type":"DELETED","object":{"metadata":{"name":"b"}}}\n';
    const bytes = Buffer.from(stream);
    // Cut inside the first line and inside the two-byte é.
    const cuts = [10, bytes.indexOf(Buffer.from('é')) + 1, 70];
    let at = 0;
    for (const cut of cuts) {
      res.write(bytes.subarray(at, cut));
      at = cut;
    }
    res.end(bytes.subarray(at));
  });
  const events: string[] = [];
  const ends: Array<WatchError | null> = [];
  await new Promise<void>((resolve) => {
    void watchRequest(
      config,
      '/apis/g/v1/things',
      { resourceVersion: '7', labelSelector: 'a=b' },
      (type, obj) => events.push(`${type} ${(obj as { metadata: { name: string } }).metadata.name}`),
      (err) => {
        ends.push(err);
        resolve();
      },
    );
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(events, ['ADDED é', 'DELETED b']);
  t.deepEqual(ends, [null]);
  t.is(seen[0]!.url, '/apis/g/v1/things?watch=true&resourceVersion=7&labelSelector=a%3Db');
});

test('a refused watch ends with the status code; an aborted one ends once', async (t) => {
  const { config } = await serve(t, (req, res) => {
    if (req.url?.includes('gone')) {
      res.statusCode = 410;
      res.end('{}');
      return;
    }
    res.setHeader('Content-Type', 'application/json');
    res.write('{"type":"ADDED","object":{}}\n'); // and never ends
  });
  const gone = await new Promise<WatchError | null>((resolve) => {
    void watchRequest(config, '/gone', {}, () => undefined, resolve);
  });
  t.is(gone?.statusCode, 410);

  const ends: Array<WatchError | null> = [];
  let first!: () => void;
  const event = new Promise<void>((resolve) => (first = resolve));
  const controller = await watchRequest(config, '/open', {}, () => first(), (err) => ends.push(err));
  await event;
  controller.abort();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(ends.length, 1);
  t.truthy(ends[0]);
});
