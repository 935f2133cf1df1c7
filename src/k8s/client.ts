// Talking to the API server: loading a KubeConfig, typed clients for the project's custom
// resources (thin wrappers over CustomObjectsApi), and telling API errors apart.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  GROUP,
  PLURAL,
  VERSION,
  type APNodeState,
  type APQNClaim,
  type APQNReservation,
  type ObjectMeta,
} from '../api/types.js';
import { realClock, sleep, type Clock } from './clock.js';
import { keyOf, splitKey, type ObjectRef } from './keys.js';
import { shareConnections } from './http-agent.js';

// Every process that talks to the API server imports this module: reuse connections
// (client-node would open a new TLS connection per request; see http-agent.ts).
shareConnections();

// ---------------------------------------------------------------------------------------------
// KubeConfig

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The cluster to talk to, in controller-runtime's order: an explicit path (the --kubeconfig
 * flag), $KUBECONFIG, the pod's service account when running in a cluster, ~/.kube/config.
 * Unlike client-node's loadFromDefault it never falls back to an unauthenticated localhost.
 */
export function loadKubeConfig(explicitPath?: string): k8s.KubeConfig {
  const env = process.env;
  const kc = new k8s.KubeConfig();
  if (explicitPath) {
    kc.loadFromFile(explicitPath);
    return kc;
  }
  if (env.KUBECONFIG) {
    // loadFromDefault merges the path list in $KUBECONFIG.
    kc.loadFromDefault();
    return kc;
  }
  if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
    return kc;
  }
  const home = path.join(os.homedir(), '.kube', 'config');
  if (fs.existsSync(home)) {
    kc.loadFromFile(home);
    return kc;
  }
  throw new Error('no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster');
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The HTTP status of an API error (ApiException, or a watch error), or undefined. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === 'number') return e.code;
    if (typeof e.statusCode === 'number') return e.statusCode;
  }
  return undefined;
}

/** The metav1.Status an ApiException carries (its body arrives as text or parsed). */
export function apiStatus(err: unknown): { reason?: string; message?: string } | undefined {
  if (!(err instanceof k8s.ApiException)) return undefined;
  let body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return { message: body as string };
    }
  }
  return body && typeof body === 'object' ? (body as { reason?: string; message?: string }) : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
/** 409: a write lost an optimistic-concurrency race (or the object already exists). */
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  statusCode(err) === 409 && apiStatus(err)?.reason === 'AlreadyExists';
/** 422: the server refused the object or patch (including a failed JSON-patch `test`). */
export const isInvalid = (err: unknown): boolean => statusCode(err) === 422;

/** A one-line description of an error for logs and condition messages. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  if (err instanceof k8s.ApiException) {
    const status = apiStatus(err);
    return `${code}${status?.reason ? ` ${status.reason}` : ''}: ${status?.message ?? 'API error'}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${code}: ${message}` : message;
}

export interface RetryOptions {
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
  /** Which errors are worth another attempt (default: 409 conflicts). */
  retryable?: (err: unknown) => boolean;
}

/**
 * Runs `fn` again (with doubling delays and jitter) while it fails with a retryable error,
 * at most `attempts` times; `fn` must re-read what it writes. Like client-go's RetryOnConflict.
 */
export async function retryOnConflict<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const clock = options.clock ?? realClock;
  const retryable = options.retryable ?? isConflict;
  let delay = options.initialDelayMs ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retryable(err)) throw err;
    }
    await sleep(clock, delay * (1 + Math.random() * 0.1));
    delay = Math.min(delay * 2, options.maxDelayMs ?? 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw reads

/** GETs an API path and returns the JSON as the server sent it (no client-side decoding). */
export async function getJson<T>(kc: k8s.KubeConfig, apiPath: string): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the KubeConfig');
  const url = new URL(cluster.server.replace(/\/$/, '') + apiPath);
  const options: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(options);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise<T>((resolve, reject) => {
    const req = transport.request(url, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) {
          try {
            resolve(JSON.parse(text) as T);
          } catch (err) {
            reject(err);
          }
        } else {
          reject(new k8s.ApiException(code, res.statusMessage ?? 'error', text, {}));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Custom resources

export interface CustomResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const ReservationType: CustomResourceType = {
  group: GROUP,
  version: VERSION,
  plural: PLURAL.reservation,
  kind: 'APQNReservation',
  namespaced: true,
};
export const ClaimType: CustomResourceType = {
  group: GROUP,
  version: VERSION,
  plural: PLURAL.claim,
  kind: 'APQNClaim',
  namespaced: true,
};
export const NodeStateType: CustomResourceType = {
  group: GROUP,
  version: VERSION,
  plural: PLURAL.nodeState,
  kind: 'APNodeState',
  namespaced: false,
};

/** The least a custom object has. */
export interface CustomObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface CustomObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface ListOptions {
  /** Only this namespace (namespaced types); all namespaces when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface PatchOptions {
  /** Content type; the default is a JSON merge patch. */
  strategy?: k8s.PatchStrategy;
  /** Server-side apply needs a field manager; `force` takes over conflicting fields. */
  fieldManager?: string;
  force?: boolean;
}

export interface DeleteOptions {
  /** Delete only this object: the API server refuses (409) when uid or resourceVersion differ. */
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** get/list/create/patch/delete for one custom resource type; objects are the wire JSON. */
export class CustomResourceClient<T extends CustomObject> {
  readonly api: k8s.CustomObjectsApi;

  constructor(
    kc: k8s.KubeConfig,
    readonly type: CustomResourceType,
  ) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  private base() {
    return { group: this.type.group, version: this.type.version, plural: this.type.plural };
  }

  private ref(target: ObjectRef | string): ObjectRef {
    const ref = typeof target === 'string' ? splitKey(target) : target;
    if (this.type.namespaced && !ref.namespace) {
      throw new Error(`${this.type.kind} ${ref.name}: a namespace is required`);
    }
    if (!this.type.namespaced && ref.namespace) {
      throw new Error(`${this.type.kind} is cluster-scoped; got namespace ${ref.namespace}`);
    }
    return ref;
  }

  /** The API path for watching (all namespaces, or one). */
  path(namespace?: string): string {
    const { group, version, plural } = this.type;
    return namespace && this.type.namespaced
      ? `/apis/${group}/${version}/namespaces/${namespace}/${plural}`
      : `/apis/${group}/${version}/${plural}`;
  }

  async get(target: ObjectRef | string): Promise<T> {
    const ref = this.ref(target);
    return (await (ref.namespace
      ? this.api.getNamespacedCustomObject({ ...this.base(), namespace: ref.namespace, name: ref.name })
      : this.api.getClusterCustomObject({ ...this.base(), name: ref.name }))) as T;
  }

  /** The object, or undefined when it does not exist. */
  async find(target: ObjectRef | string): Promise<T | undefined> {
    try {
      return await this.get(target);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(options: ListOptions = {}): Promise<CustomObjectList<T>> {
    const selectors = { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
    const list =
      options.namespace && this.type.namespaced
        ? await this.api.listNamespacedCustomObject({ ...this.base(), namespace: options.namespace, ...selectors })
        : await this.api.listClusterCustomObject({ ...this.base(), ...selectors });
    return list as CustomObjectList<T>;
  }

  async create(obj: T): Promise<T> {
    const body = { apiVersion: `${this.type.group}/${this.type.version}`, kind: this.type.kind, ...obj };
    const namespace = obj.metadata?.namespace;
    this.ref({ namespace, name: obj.metadata?.name ?? '' });
    return (await (namespace
      ? this.api.createNamespacedCustomObject({ ...this.base(), namespace, body })
      : this.api.createClusterCustomObject({ ...this.base(), body }))) as T;
  }

  /** Replaces the whole object (PUT); its resourceVersion makes it conditional. */
  async replace(obj: T): Promise<T> {
    const ref = this.ref({ namespace: obj.metadata?.namespace, name: obj.metadata?.name ?? '' });
    return (await (ref.namespace
      ? this.api.replaceNamespacedCustomObject({ ...this.base(), namespace: ref.namespace, name: ref.name, body: obj })
      : this.api.replaceClusterCustomObject({ ...this.base(), name: ref.name, body: obj }))) as T;
  }

  /** Patches the main resource (spec, metadata); a JSON merge patch unless told otherwise. */
  async patch(target: ObjectRef | string, body: unknown, options: PatchOptions = {}): Promise<T> {
    const ref = this.ref(target);
    const params = { ...this.base(), name: ref.name, body, ...patchParams(options) };
    const config = k8s.setHeaderOptions('Content-Type', options.strategy ?? k8s.PatchStrategy.MergePatch);
    return (await (ref.namespace
      ? this.api.patchNamespacedCustomObject({ ...params, namespace: ref.namespace }, config)
      : this.api.patchClusterCustomObject(params, config))) as T;
  }

  /** Patches the status subresource (the main resource ignores status writes). */
  async patchStatus(target: ObjectRef | string, body: unknown, options: PatchOptions = {}): Promise<T> {
    const ref = this.ref(target);
    const params = { ...this.base(), name: ref.name, body, ...patchParams(options) };
    const config = k8s.setHeaderOptions('Content-Type', options.strategy ?? k8s.PatchStrategy.MergePatch);
    return (await (ref.namespace
      ? this.api.patchNamespacedCustomObjectStatus({ ...params, namespace: ref.namespace }, config)
      : this.api.patchClusterCustomObjectStatus(params, config))) as T;
  }

  /**
   * Deletes the object; false when it was already gone. With preconditions the server deletes
   * only the object of that uid and/or resourceVersion, and answers 409 otherwise (someone
   * recreated or changed it meanwhile).
   */
  async delete(target: ObjectRef | string, options: DeleteOptions = {}): Promise<boolean> {
    const ref = this.ref(target);
    const body = options.preconditions ? { body: { preconditions: options.preconditions } } : {};
    try {
      await (ref.namespace
        ? this.api.deleteNamespacedCustomObject({ ...this.base(), namespace: ref.namespace, name: ref.name, ...body })
        : this.api.deleteClusterCustomObject({ ...this.base(), name: ref.name, ...body }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** `kind namespace/name` for messages. */
  describe(target: ObjectRef | string): string {
    return `${this.type.kind} ${typeof target === 'string' ? target : keyOf(target)}`;
  }
}

function patchParams(options: PatchOptions): { fieldManager?: string; force?: boolean } {
  const params: { fieldManager?: string; force?: boolean } = {};
  if (options.fieldManager) params.fieldManager = options.fieldManager;
  if (options.force !== undefined) params.force = options.force;
  return params;
}

export interface OperatorClients {
  reservations: CustomResourceClient<APQNReservation>;
  claims: CustomResourceClient<APQNClaim>;
  nodeStates: CustomResourceClient<APNodeState>;
}

/** Clients for APQNReservation, APQNClaim and APNodeState. */
export function operatorClients(kc: k8s.KubeConfig): OperatorClients {
  return {
    reservations: new CustomResourceClient<APQNReservation>(kc, ReservationType),
    claims: new CustomResourceClient<APQNClaim>(kc, ClaimType),
    nodeStates: new CustomResourceClient<APNodeState>(kc, NodeStateType),
  };
}
