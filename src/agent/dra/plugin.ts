// The agent as the node's kubelet DRA plugin for driver ap.s390x.io. Two unix sockets:
//   <registrationDir>/ap.s390x.io-reg.sock — pluginregistration.Registration: the kubelet's
//     plugin watcher finds it, asks GetInfo (type DRAPlugin, our DRA socket, the services we
//     speak) and reports whether it registered us;
//   <pluginDir>/dra.sock — the DRAPlugin service, v1 and v1beta1 (Kubernetes 1.34 speaks both).
// NodePrepareResources reads each ResourceClaim and this node's APNodeState from the API
// server, checks the claim may have the device (prepare.ts) and writes its CDI spec and
// metadata file (files.ts); NodeUnprepareResources removes those files only — the mdev belongs
// to the reservation, not to the pod. Both are idempotent: the kubelet retries freely.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ApiConfig } from '../../k8s/kubeconfig.js';
import { DRA_DRIVER, ResourceClaimType, type ResourceClaim } from '../../api/dra.js';
import type { APNodeState } from '../../api/types.js';
import type { SysfsIO } from '../../apbus/sysfs-io.js';
import { CustomResourceClient, NodeStateType, describeError, isNotFound } from '../../k8s/client.js';
import { logger, type Logger } from '../../log.js';
import { cdiDeviceId, removeClaimFiles, writeClaimFiles, type FileLocations } from './files.js';
import {
  DRA_PLUGIN_TYPE,
  DRA_SERVICES,
  kubeletProtos,
  type ClaimMessage,
  type PluginInfoMessage,
  type PrepareRequest,
  type PrepareResponse,
  type RegistrationStatusMessage,
  type UnprepareRequest,
  type UnprepareResponse,
} from './grpc.js';
import { PrepareRefusal, claimIdentity, planPrepare } from './prepare.js';

export const DEFAULT_REGISTRATION_DIR = '/var/lib/kubelet/plugins_registry';
export const DEFAULT_PLUGIN_DIR = `/var/lib/kubelet/plugins/${DRA_DRIVER}`;
export const DEFAULT_CDI_DIR = '/var/run/cdi';
export const DEFAULT_METADATA_ROOT = '/var/run/apqn-operator/dra-metadata';

export interface DraPluginOptions {
  kubeConfig: ApiConfig;
  nodeName: string;
  /** This node's AP bus (the agent's SysfsBackend.io). */
  io: SysfsIO;
  registrationDir?: string;
  pluginDir?: string;
  cdiDir?: string;
  metadataRoot?: string;
  log?: Logger;
}

export interface RegistrationState {
  /** The kubelet's last word: undefined until it called NotifyRegistrationStatus. */
  registered?: boolean;
  error?: string;
}

export class DraPlugin {
  readonly registrationSocket: string;
  readonly pluginSocket: string;
  readonly files: FileLocations;
  readonly registration: RegistrationState = {};
  readonly stats = { prepared: 0, refused: 0, unprepared: 0 };
  private readonly log: Logger;
  private readonly claims: CustomResourceClient<ResourceClaim>;
  private readonly nodeStates: CustomResourceClient<APNodeState>;
  private readonly servers: grpc.Server[] = [];
  /** One operation per claim at a time (the kubelet may retry while a call still runs). */
  private readonly perClaim = new Map<string, Promise<unknown>>();

  constructor(private readonly options: DraPluginOptions) {
    this.registrationSocket = path.join(options.registrationDir ?? DEFAULT_REGISTRATION_DIR, `${DRA_DRIVER}-reg.sock`);
    this.pluginSocket = path.join(options.pluginDir ?? DEFAULT_PLUGIN_DIR, 'dra.sock');
    this.files = { cdiDir: options.cdiDir ?? DEFAULT_CDI_DIR, metadataRoot: options.metadataRoot ?? DEFAULT_METADATA_ROOT };
    this.log = options.log ?? logger('dra-plugin', { node: options.nodeName });
    this.claims = new CustomResourceClient<ResourceClaim>(options.kubeConfig, ResourceClaimType);
    this.nodeStates = new CustomResourceClient<APNodeState>(options.kubeConfig, NodeStateType);
  }

  /** Serves the DRA socket first, then the registration socket (the kubelet connects as soon as that appears). */
  async start(): Promise<void> {
    const protos = kubeletProtos();
    const dra = new grpc.Server();
    const handlers = {
      NodePrepareResources: unary((req: PrepareRequest) => this.prepareAll(req)),
      NodeUnprepareResources: unary((req: UnprepareRequest) => this.unprepareAll(req)),
    };
    dra.addService(protos.draV1.service, handlers);
    dra.addService(protos.draV1beta1.service, handlers);
    await serve(dra, this.pluginSocket);
    this.servers.push(dra);

    const registration = new grpc.Server();
    registration.addService(protos.registration.service, {
      GetInfo: unary(async (): Promise<PluginInfoMessage> => ({
        type: DRA_PLUGIN_TYPE,
        name: DRA_DRIVER,
        endpoint: this.pluginSocket,
        supported_versions: [...DRA_SERVICES],
      })),
      NotifyRegistrationStatus: unary(async (status: RegistrationStatusMessage) => {
        this.registration.registered = status.plugin_registered;
        this.registration.error = status.error || undefined;
        if (status.plugin_registered) this.log.info('registered with the kubelet', { socket: this.pluginSocket });
        else this.log.error('the kubelet refused the registration', { error: status.error });
        return {};
      }),
    });
    await serve(registration, this.registrationSocket);
    this.servers.push(registration);
    this.log.info('DRA plugin serving', { registration: this.registrationSocket, plugin: this.pluginSocket, cdiDir: this.files.cdiDir });
  }

  /** Stops serving and removes both sockets (the kubelet then deregisters the plugin). */
  async stop(): Promise<void> {
    for (const s of this.servers.splice(0).reverse()) {
      await new Promise<void>((resolve) => s.tryShutdown(() => resolve()));
    }
    for (const socket of [this.registrationSocket, this.pluginSocket]) fs.rmSync(socket, { force: true });
  }

  private serialized<T>(uid: string, op: () => Promise<T>): Promise<T> {
    const previous = this.perClaim.get(uid) ?? Promise.resolve();
    const next = previous.then(op, op);
    const tail = next.catch(() => undefined);
    this.perClaim.set(uid, tail);
    void tail.then(() => {
      if (this.perClaim.get(uid) === tail) this.perClaim.delete(uid);
    });
    return next;
  }

  private async prepareAll(req: PrepareRequest): Promise<PrepareResponse> {
    const claims: PrepareResponse['claims'] = answers();
    await Promise.all(
      (req.claims ?? []).map(async (ref) => {
        claims[ref.uid] = await this.serialized(ref.uid, () => this.prepareOne(ref));
      }),
    );
    return { claims };
  }

  private async prepareOne(ref: ClaimMessage): Promise<PrepareResponse['claims'][string]> {
    const log = this.log.child({ claim: `${ref.namespace}/${ref.name}`, uid: ref.uid });
    try {
      const rc = await this.claims.get({ namespace: ref.namespace, name: ref.name });
      const state = await this.nodeStates.find(this.options.nodeName);
      const devices = planPrepare(ref, rc, this.options.nodeName, state?.spec?.mdevs ?? [], this.options.io);
      const identity = claimIdentity(ref, rc);
      const written = writeClaimFiles(this.files, identity, devices);
      this.stats.prepared++;
      log.info(written > 0 ? 'prepared claim' : 'claim already prepared', {
        devices: devices.map((d) => `${d.pool}/${d.device}`),
        mdev: devices.map((d) => d.mdevUUID),
        iommuGroup: devices.map((d) => d.iommuGroup),
      });
      return {
        error: '',
        devices: devices.map((d) => ({
          request_names: [d.request],
          pool_name: d.pool,
          device_name: d.device,
          cdi_device_ids: [cdiDeviceId(ref.uid, d.request)],
        })),
      };
    } catch (err) {
      this.stats.refused++;
      const message =
        err instanceof PrepareRefusal
          ? err.message
          : isNotFound(err)
            ? `ResourceClaim ${ref.namespace}/${ref.name} not found`
            : `cannot prepare: ${describeError(err)}`;
      log.warn('claim not prepared', { error: message });
      return { devices: [], error: message };
    }
  }

  private async unprepareAll(req: UnprepareRequest): Promise<UnprepareResponse> {
    const claims: UnprepareResponse['claims'] = answers();
    await Promise.all(
      (req.claims ?? []).map(async (ref) => {
        claims[ref.uid] = await this.serialized(ref.uid, async () => {
          try {
            removeClaimFiles(this.files, ref.uid);
            this.stats.unprepared++;
            this.log.info('unprepared claim', { claim: `${ref.namespace}/${ref.name}`, uid: ref.uid });
            return { error: '' };
          } catch (err) {
            return { error: `cannot unprepare: ${describeError(err)}` };
          }
        });
      }),
    );
    return { claims };
  }
}

/** A unary handler from an async function; a throw becomes an INTERNAL status. */
function unary<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback({ code: grpc.status.INTERNAL, details: describeError(err) }),
    );
  };
}

/**
 * The per-claim answers of one call, keyed by claim uid: an object without a prototype, so
 * that every uid the kubelet sends (even `__proto__`) is an own key that goes on the wire.
 */
function answers<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Only the socket's owner (root, as the kubelet) may connect: whoever can talk to it can ask for devices. */
const SOCKET_MODE = 0o600;

/**
 * Binds a server to a unix socket, replacing a stale socket file left by a previous run. The
 * socket is created under umask 077, so it is never open to others (not even until the chmod
 * to SOCKET_MODE after); anything else the process creates meanwhile is only private too.
 */
async function serve(server: grpc.Server, socket: string): Promise<void> {
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  fs.rmSync(socket, { force: true });
  const umask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(socket, SOCKET_MODE);
}

/** Starts the plugin; the agent command runs it when given --dra-plugin. */
export async function startDraPlugin(options: DraPluginOptions): Promise<DraPlugin> {
  const plugin = new DraPlugin(options);
  await plugin.start();
  return plugin;
}
