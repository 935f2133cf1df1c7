// The kubelet-facing gRPC definitions (proto/*.proto, loaded at start-up) and the TypeScript
// shapes of their messages. Field names are kept as in the .proto files (keepCase).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto');

/** The services a DRA plugin names in its registration, newest first (the kubelet picks the first it knows). */
export const DRA_SERVICES = ['v1.DRAPlugin', 'v1beta1.DRAPlugin'] as const;
export const DRA_PLUGIN_TYPE = 'DRAPlugin';

export interface ClaimMessage {
  namespace: string;
  uid: string;
  name: string;
}

export interface DeviceMessage {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
}

export interface PrepareRequest {
  claims: ClaimMessage[];
}
export interface PrepareResponse {
  claims: Record<string, { devices: DeviceMessage[]; error: string }>;
}
export interface UnprepareRequest {
  claims: ClaimMessage[];
}
export interface UnprepareResponse {
  claims: Record<string, { error: string }>;
}

export interface PluginInfoMessage {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}

export interface RegistrationStatusMessage {
  plugin_registered: boolean;
  error: string;
}

const LOAD_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type ServiceCtor = grpc.ServiceClientConstructor;

export interface KubeletProtos {
  registration: ServiceCtor;
  draV1: ServiceCtor;
  draV1beta1: ServiceCtor;
}

function lookup(root: grpc.GrpcObject, dotted: string): ServiceCtor {
  let at: unknown = root;
  for (const part of dotted.split('.')) at = (at as Record<string, unknown>)?.[part];
  if (typeof at !== 'function') throw new Error(`gRPC service ${dotted} not found in ${PROTO_DIR}`);
  return at as ServiceCtor;
}

let loaded: KubeletProtos | undefined;

/** The three services (loaded once): server definitions and client constructors. */
export function kubeletProtos(): KubeletProtos {
  if (!loaded) {
    const load = (file: string) => grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_DIR, file), LOAD_OPTIONS));
    loaded = {
      registration: lookup(load('pluginregistration.proto'), 'pluginregistration.Registration'),
      draV1: lookup(load('dra-v1.proto'), 'k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin'),
      draV1beta1: lookup(load('dra-v1beta1.proto'), 'k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin'),
    };
  }
  return loaded;
}
