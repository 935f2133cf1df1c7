// Requests to the API server without client-node's generated API classes: JSON in and out,
// with the configuration's TLS, credentials and shared keep-alive connections
// (applyToHTTPSOptions), and watches read line by line.
//
// The project's clients (CustomResourceClient, Informer, EventRecorder, LeaderElector) work on
// the wire JSON anyway, so the generated layer only converted objects back and forth. Using it
// meant loading it — all of it: see kubeconfig.ts. Errors are client-node's ApiException, as
// the generated clients throw them (code, and the response text as body), so statusCode(),
// apiStatus() and describeError() in client.ts read both alike.
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import type * as k8s from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { shareConnections } from './http-agent.js';
import type { ApiConfig } from './kubeconfig.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Content-Type of the body (default application/json; patches name their strategy). */
  contentType?: string;
}

/** Options for a request to `apiPath` on the configuration's current cluster. */
async function prepare(
  config: ApiConfig,
  apiPath: string,
  query: Query | undefined,
  method: string,
): Promise<{ url: URL; options: https.RequestOptions }> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the KubeConfig');
  // A client-node KubeConfig (tests, `dev`) makes an agent per request unless its class shares them.
  const kubeConfigClass = config.constructor as typeof k8s.KubeConfig;
  if (typeof (kubeConfigClass.prototype as unknown as { createAgent?: unknown }).createAgent === 'function') {
    shareConnections(kubeConfigClass);
  }
  const url = new URL(cluster.server.replace(/\/$/, '') + apiPath);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  const options: https.RequestOptions = {
    method,
    headers: { Accept: 'application/json', 'Accept-Encoding': 'gzip, deflate', 'User-Agent': 'apqn-operator' },
  };
  await config.applyToHTTPSOptions(options);
  return { url, options };
}

function send(url: URL, options: https.RequestOptions): http.ClientRequest {
  return (url.protocol === 'http:' ? http : https).request(url, options);
}

/** The response body, decompressed when the server compressed it (large lists). */
function bodyStream(res: http.IncomingMessage): Readable {
  const encoding = res.headers['content-encoding'];
  if (encoding === 'gzip') return res.pipe(zlib.createGunzip());
  if (encoding === 'deflate') return res.pipe(zlib.createInflate());
  return res;
}

function responseHeaders(res: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/**
 * One request; resolves with the parsed JSON response (undefined when empty) and rejects with
 * an ApiException for any status outside 2xx, as the generated clients do (with the response
 * text as body, which they drop for a 401).
 */
export async function apiRequest<T>(config: ApiConfig, apiPath: string, request: RequestOptions = {}): Promise<T> {
  const method = request.method ?? 'GET';
  const { url, options } = await prepare(config, apiPath, request.query, method);
  const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
  if (payload) {
    Object.assign(options.headers!, {
      'Content-Type': request.contentType ?? 'application/json',
      'Content-Length': payload.length,
    });
  }
  return new Promise<T>((resolve, reject) => {
    const req = send(url, options);
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const body = bodyStream(res);
      body.on('data', (chunk: Buffer) => chunks.push(chunk));
      body.on('error', reject);
      res.on('error', reject);
      body.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code < 200 || code > 299) {
          const message = code === 401 ? 'Unauthorized' : 'Unknown API Status Code!';
          reject(new ApiException(code, message, text, responseHeaders(res)));
        } else {
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch (err) {
            reject(err);
          }
        }
      });
    });
    req.end(payload);
  });
}

/** An error ending a watch: the HTTP status when the server refused it. */
export interface WatchError extends Error {
  statusCode?: number;
}

/**
 * Watches `apiPath` (?watch=true plus `query`) as client-node's Watch does: `onEvent` for every
 * line of the stream (lines that are not JSON are skipped), then `onDone` exactly once — with
 * null when the server ended the stream, or the error (a refused watch carries statusCode).
 * Aborting the returned controller ends the watch (onDone gets the abort error).
 */
export async function watchRequest(
  config: ApiConfig,
  apiPath: string,
  query: Query,
  onEvent: (type: string, object: unknown) => void,
  onDone: (err: WatchError | null) => void,
): Promise<AbortController> {
  const controller = new AbortController();
  let done = false;
  const finish = (err: WatchError | null) => {
    if (done) return;
    done = true;
    controller.abort();
    onDone(err);
  };
  let prepared;
  try {
    prepared = await prepare(config, apiPath, { watch: 'true', ...query }, 'GET');
  } catch (err) {
    finish(err as Error);
    return controller;
  }
  const req = send(prepared.url, { ...prepared.options, signal: controller.signal });
  req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
  req.on('error', (err) => finish(err));
  req.on('response', (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      const err: WatchError = new Error(res.statusMessage || http.STATUS_CODES[res.statusCode ?? 500] || 'Internal Server Error');
      err.statusCode = res.statusCode;
      finish(err);
      return;
    }
    const body = bodyStream(res);
    body.setEncoding('utf8');
    let pending = '';
    body.on('data', (chunk: string) => {
      pending += chunk;
      // Lines are cut from a moving start and the rest kept once per chunk: cutting the rest
      // again after every line would copy a chunk of many events once per event.
      let start = 0;
      let newline: number;
      while ((newline = pending.indexOf('\n', start)) >= 0) {
        const line = pending.slice(start, newline);
        start = newline + 1;
        if (done) return;
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue; // as client-node: a line that is not JSON is skipped
        }
        onEvent(String(event.type), event.object);
      }
      pending = pending.slice(start);
    });
    body.on('error', (err) => finish(err));
    res.on('error', (err) => finish(err));
    body.on('end', () => finish(null));
    // A connection cut mid-stream ends the watch with an error (a complete one ends above).
    res.on('close', () => {
      if (!res.complete) finish(new Error('the watch connection closed before the stream ended'));
    });
  });
  req.end();
  return controller;
}
