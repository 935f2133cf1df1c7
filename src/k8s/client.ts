// Talking to the API server: loading the configuration, typed clients for the project's custom
// resources (plain requests, rest.ts), and telling API errors apart.
//
// Nothing here loads client-node's main module (see kubeconfig.ts for why): only its light
// ApiException and PatchStrategy modules, and its types.
import type * as k8s from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { PatchStrategy } from '@kubernetes/client-node/dist/patch.js';
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
import type { ApiConfig } from './kubeconfig.js';
import { apiRequest } from './rest.js';

export { ApiException, PatchStrategy };
export { ClusterConfig, loadKubeConfig, type ApiConfig } from './kubeconfig.js';

// ---------------------------------------------------------------------------------------------
// Errors

/** The HTTP status of an API error (ApiException, or a watch error), or undefined. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === 'number') return e.code;
    if (typeof e.statusCode === 'number') return e.statusCode;
  }
  return undefined;
}

/** The metav1.Status an ApiException carries (its body arrives as text or parsed). */
export function apiStatus(err: unknown): { reason?: string; message?: string } | undefined {
  if (!(err instanceof ApiException)) return undefined;
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
  if (err instanceof ApiException) {
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
export function getJson<T>(kc: ApiConfig, apiPath: string): Promise<T> {
  return apiRequest<T>(kc, apiPath);
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
  constructor(
    private readonly kc: ApiConfig,
    readonly type: CustomResourceType,
  ) {}

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

  /** The collection's API path, for lists and watches (all namespaces, or one). */
  path(namespace?: string): string {
    return this.objectPath({ namespace: this.type.namespaced ? namespace : undefined });
  }

  /** The path of one object (or of the collection, or of a subresource), names escaped. */
  private objectPath(ref: { namespace?: string; name?: string }, subresource?: string): string {
    const { group, version, plural } = this.type;
    let p = `/apis/${group}/${version}`;
    if (ref.namespace) p += `/namespaces/${encodeURIComponent(ref.namespace)}`;
    p += `/${plural}`;
    if (ref.name !== undefined) p += `/${encodeURIComponent(ref.name)}`;
    return subresource ? `${p}/${subresource}` : p;
  }

  async get(target: ObjectRef | string): Promise<T> {
    return apiRequest<T>(this.kc, this.objectPath(this.ref(target)));
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
    return apiRequest<CustomObjectList<T>>(this.kc, this.path(options.namespace), {
      query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
    });
  }

  async create(obj: T): Promise<T> {
    const body = { apiVersion: `${this.type.group}/${this.type.version}`, kind: this.type.kind, ...obj };
    const namespace = obj.metadata?.namespace;
    this.ref({ namespace, name: obj.metadata?.name ?? '' });
    return apiRequest<T>(this.kc, this.objectPath({ namespace }), { method: 'POST', body });
  }

  /** Replaces the whole object (PUT); its resourceVersion makes it conditional. */
  async replace(obj: T): Promise<T> {
    const ref = this.ref({ namespace: obj.metadata?.namespace, name: obj.metadata?.name ?? '' });
    return apiRequest<T>(this.kc, this.objectPath(ref), { method: 'PUT', body: obj });
  }

  /** Patches the main resource (spec, metadata); a JSON merge patch unless told otherwise. */
  async patch(target: ObjectRef | string, body: unknown, options: PatchOptions = {}): Promise<T> {
    return this.sendPatch(this.objectPath(this.ref(target)), body, options);
  }

  /** Patches the status subresource (the main resource ignores status writes). */
  async patchStatus(target: ObjectRef | string, body: unknown, options: PatchOptions = {}): Promise<T> {
    return this.sendPatch(this.objectPath(this.ref(target), 'status'), body, options);
  }

  private sendPatch(apiPath: string, body: unknown, options: PatchOptions): Promise<T> {
    return apiRequest<T>(this.kc, apiPath, {
      method: 'PATCH',
      body,
      contentType: options.strategy ?? PatchStrategy.MergePatch,
      query: patchParams(options),
    });
  }

  /**
   * Deletes the object; false when it was already gone. With preconditions the server deletes
   * only the object of that uid and/or resourceVersion, and answers 409 otherwise (someone
   * recreated or changed it meanwhile).
   */
  async delete(target: ObjectRef | string, options: DeleteOptions = {}): Promise<boolean> {
    const body = options.preconditions ? { preconditions: options.preconditions } : undefined;
    try {
      await apiRequest(this.kc, this.objectPath(this.ref(target)), { method: 'DELETE', body });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes every object of a namespace (or of the cluster) matching the selectors. */
  async deleteCollection(options: ListOptions = {}): Promise<void> {
    await apiRequest(this.kc, this.path(options.namespace), {
      method: 'DELETE',
      query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
    });
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
export function operatorClients(kc: ApiConfig): OperatorClients {
  return {
    reservations: new CustomResourceClient<APQNReservation>(kc, ReservationType),
    claims: new CustomResourceClient<APQNClaim>(kc, ClaimType),
    nodeStates: new CustomResourceClient<APNodeState>(kc, NodeStateType),
  };
}
