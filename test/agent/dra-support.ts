// Shared by the DRA plugin tests: a simulated node with a matrix mdev, the kubelet's side of
// the plugin sockets (a gRPC client as the kubelet uses them), and a reader of the prepared
// device metadata that follows KubeVirt's virt-launcher (pkg/dra in kubevirt v1.8): from the
// VMI's resourceClaims entry to resourceclaims/<claim>/<request>/*-metadata.json, exactly one
// file, the first object of the JSON stream with a known apiVersion, the request by name,
// exactly one device, its `mdevUUID` string attribute.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { kubeletProtos } from '../../src/agent/dra/grpc.js';
import { ApBusModel, ManualClock } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { VirtualSysfs } from '../../src/apbus/virtual-sysfs.js';

export const MDEV_CREATE = 'devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create';

/** A node with cards 05 (CCA) and 06 (EP11); adapter 05's queues handed to vfio_ap. */
export function vfioNode(name: string): { model: ApBusModel; io: VirtualSysfs } {
  const topo = topologyFromObject({
    nodes: [
      {
        name,
        kernel: '6.10',
        maxDomainId: 84,
        cards: [
          { id: '05', type: 'CEX8C', domains: '0000-000f' },
          { id: '06', type: 'CEX8P', domains: '0000-000f' },
        ],
      },
    ],
  });
  const model = ApBusModel.fromTopology(topo.nodes[0]!, { clock: new ManualClock() });
  const io = new VirtualSysfs(model);
  io.write('bus/ap/apmask', '-5');
  return { model, io };
}

/** Creates a matrix mdev through sysfs, as the agent would. */
export function makeMdev(io: VirtualSysfs, uuid: string, adapters: number[], domains: number[], controlDomains: number[] = []): void {
  io.write(MDEV_CREATE, uuid);
  const dir = `devices/vfio_ap/matrix/${uuid}`;
  for (const a of adapters) io.write(`${dir}/assign_adapter`, `0x${a.toString(16)}`);
  for (const d of domains) io.write(`${dir}/assign_domain`, `0x${d.toString(16)}`);
  for (const d of controlDomains) io.write(`${dir}/assign_control_domain`, `0x${d.toString(16)}`);
}

// --------------------------------------------------------------------------- the kubelet side

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

function call<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    ((client as unknown as Record<string, Unary>)[method]!).call(client, req, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

/** What the kubelet does with a plugin socket: GetInfo, NotifyRegistrationStatus, DRA calls. */
export class FakeKubelet {
  private readonly clients: grpc.Client[] = [];

  private client(ctor: grpc.ServiceClientConstructor, socket: string): grpc.Client {
    const c = new ctor(`unix:${socket}`, grpc.credentials.createInsecure());
    this.clients.push(c);
    return c;
  }

  getInfo(registrationSocket: string) {
    return call<{ type: string; name: string; endpoint: string; supported_versions: string[] }>(
      this.client(kubeletProtos().registration, registrationSocket),
      'GetInfo',
      {},
    );
  }

  notify(registrationSocket: string, registered: boolean, error = '') {
    return call<object>(this.client(kubeletProtos().registration, registrationSocket), 'NotifyRegistrationStatus', {
      plugin_registered: registered,
      error,
    });
  }

  prepare(endpoint: string, claims: Array<{ namespace: string; name: string; uid: string }>, version: 'v1' | 'v1beta1' = 'v1') {
    const ctor = version === 'v1' ? kubeletProtos().draV1 : kubeletProtos().draV1beta1;
    return call<{
      claims: Record<string, { error: string; devices: Array<{ request_names: string[]; pool_name: string; device_name: string; cdi_device_ids: string[] }> }>;
    }>(this.client(ctor, endpoint), 'NodePrepareResources', { claims });
  }

  unprepare(endpoint: string, claims: Array<{ namespace: string; name: string; uid: string }>) {
    return call<{ claims: Record<string, { error: string }> }>(this.client(kubeletProtos().draV1, endpoint), 'NodeUnprepareResources', { claims });
  }

  close(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}

// --------------------------------------------------------------------------- the container side

interface CdiMount {
  hostPath: string;
  containerPath: string;
}

/**
 * The compute container's view of the CDI device's mounts: each mount's host file linked at
 * its container path under `containerRoot` (a bind mount, as the runtime would make it).
 */
export function materializeMounts(cdiSpecFile: string, cdiDeviceName: string, containerRoot: string): void {
  const spec = JSON.parse(fs.readFileSync(cdiSpecFile, 'utf8')) as { devices: Array<{ name: string; containerEdits: { mounts?: CdiMount[] } }> };
  const device = spec.devices.find((d) => d.name === cdiDeviceName);
  if (!device) throw new Error(`CDI device ${cdiDeviceName} not in ${cdiSpecFile}`);
  for (const m of device.containerEdits.mounts ?? []) {
    const target = path.join(containerRoot, m.containerPath);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(m.hostPath, target);
  }
}

const SUPPORTED_METADATA_VERSIONS = new Set(['metadata.resource.k8s.io/v1alpha1']);

/** A VMI's spec.resourceClaims entry. */
export interface VmiResourceClaim {
  name: string;
  resourceClaimName?: string;
  resourceClaimTemplateName?: string;
}

/** Splits a JSON stream (objects one after another) into its objects. */
function jsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') {
      if (depth++ === 0) start = i;
    } else if (ch === '}' && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

/** The mdev UUID virt-launcher would put into the domain XML for hostDevices[].claimName/requestName. */
export function mdevUuidAsVirtLauncherReadsIt(base: string, claims: VmiResourceClaim[], claimName: string, requestName: string): string {
  const entry = claims.find((c) => c.name === claimName);
  if (!entry) throw new Error(`metadata not found for claim ${claimName}`);
  const dir = entry.resourceClaimName
    ? path.join(base, 'resourceclaims', entry.resourceClaimName, requestName)
    : path.join(base, 'resourceclaimtemplates', entry.name, requestName);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('-metadata.json')) : [];
  if (files.length !== 1) throw new Error(`expected exactly one *-metadata.json in ${dir}, found ${files.length}`);
  const objects = jsonStream(fs.readFileSync(path.join(dir, files[0]!), 'utf8')) as Array<{
    apiVersion?: string;
    requests?: Array<{ name: string; devices?: Array<{ attributes?: Record<string, { string?: string }> }> }>;
  }>;
  const md = objects.find((o) => o.apiVersion && SUPPORTED_METADATA_VERSIONS.has(o.apiVersion));
  if (!md) throw new Error('no compatible metadata version found in stream');
  const request = md.requests?.find((r) => r.name === requestName);
  if (!request) throw new Error(`request ${requestName} not found in metadata`);
  if ((request.devices ?? []).length !== 1) throw new Error(`request ${requestName} has ${request.devices?.length ?? 0} devices, not exactly one`);
  const uuid = request.devices![0]!.attributes?.['mdevUUID']?.string;
  if (!uuid) throw new Error(`mdevUUID not found for claim ${claimName} request ${requestName}`);
  return uuid;
}
