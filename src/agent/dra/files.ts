// The two files a prepared claim leaves on the node, and nothing else:
//   - a CDI spec (<cdiDir>/ap.s390x.io-<claim uid>.json) telling the container runtime to give
//     the compute container /dev/vfio/vfio, /dev/vfio/<iommu group> and the metadata file;
//   - the device-metadata file KubeVirt's virt-launcher reads (KEP-5304 layout,
//     metadata.resource.k8s.io/v1alpha1), one per request, kept on the host under
//     <metadataRoot>/<claim uid>/<request>/ and mounted at the container path virt-launcher
//     globs: /var/run/kubernetes.io/dra-device-attributes/resourceclaims/<claim>/<request>/
//     (resourceclaimtemplates/<pod claim name>/… for a claim made from a template).
// Writes are atomic (temporary file + rename) and skipped when the content is already there.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DRA_DRIVER, DeviceAttr, type DeviceAttribute } from '../../api/dra.js';

export const CDI_VERSION = '0.5.0';
export const CDI_KIND = `${DRA_DRIVER}/vfio-ap`;
export const METADATA_API_VERSION = 'metadata.resource.k8s.io/v1alpha1';
export const METADATA_KIND = 'DeviceMetadata';
export const CONTAINER_METADATA_DIR = '/var/run/kubernetes.io/dra-device-attributes';
export const METADATA_FILE = `${DRA_DRIVER}-metadata.json`;
/** Set by Kubernetes on claims generated from a ResourceClaimTemplate. */
export const POD_CLAIM_NAME_ANNOTATION = 'resource.kubernetes.io/pod-claim-name';

export interface FileLocations {
  cdiDir: string;
  metadataRoot: string;
}

/** What one allocated device of a claim became on this node. */
export interface PreparedDevice {
  request: string;
  pool: string;
  device: string;
  mdevUUID: string;
  iommuGroup: number;
  reservation: string;
}

export interface ClaimIdentity {
  namespace: string;
  name: string;
  uid: string;
  generation?: number;
  /** From the pod-claim-name annotation: the claim was made from a template. */
  podClaimName?: string;
}

const UID_RE = /^[0-9a-zA-Z][-0-9a-zA-Z]{0,63}$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Claim uids and names become path segments: refuse anything that could leave its directory. */
export function checkClaimUid(uid: string): string {
  if (!UID_RE.test(uid)) throw new Error(`claim uid ${JSON.stringify(uid)} is not a Kubernetes uid`);
  return uid;
}

function checkName(value: string, what: string, re: RegExp): string {
  if (!re.test(value) || value.length > 253) throw new Error(`${what} ${JSON.stringify(value)} is not a valid Kubernetes name`);
  return value;
}

export function cdiSpecPath(loc: FileLocations, uid: string): string {
  return path.join(loc.cdiDir, `${DRA_DRIVER}-${checkClaimUid(uid)}.json`);
}

export function claimMetadataDir(loc: FileLocations, uid: string): string {
  return path.join(loc.metadataRoot, checkClaimUid(uid));
}

export function metadataHostPath(loc: FileLocations, uid: string, request: string): string {
  return path.join(claimMetadataDir(loc, uid), checkName(request, 'request name', DNS_LABEL_RE), METADATA_FILE);
}

/** Where virt-launcher looks for the file of this claim's request. */
export function metadataContainerPath(claim: ClaimIdentity, request: string): string {
  const [sub, dirName] = claim.podClaimName
    ? ['resourceclaimtemplates', checkName(claim.podClaimName, 'pod claim name', DNS_LABEL_RE)]
    : ['resourceclaims', checkName(claim.name, 'claim name', DNS_SUBDOMAIN_RE)];
  return path.posix.join(CONTAINER_METADATA_DIR, sub, dirName, checkName(request, 'request name', DNS_LABEL_RE), METADATA_FILE);
}

/** The CDI device name of one prepared device (unique per claim and request). */
export function cdiDeviceName(uid: string, request: string): string {
  return `${checkClaimUid(uid)}-${request}`;
}

export function cdiDeviceId(uid: string, request: string): string {
  return `${CDI_KIND}=${cdiDeviceName(uid, request)}`;
}

/** The metadata document of one request (exactly one device: virt-launcher refuses more). */
export function metadataDocument(claim: ClaimIdentity, d: PreparedDevice): object {
  const attributes: Record<string, DeviceAttribute> = {
    // Unqualified: the key virt-launcher looks up (its MDevUUIDAttribute).
    mdevUUID: { string: d.mdevUUID },
    [`${DRA_DRIVER}/${DeviceAttr.reservation}`]: { string: d.reservation },
    [`${DRA_DRIVER}/iommuGroup`]: { int: d.iommuGroup },
  };
  return {
    apiVersion: METADATA_API_VERSION,
    kind: METADATA_KIND,
    metadata: { name: claim.name, namespace: claim.namespace, uid: claim.uid, generation: claim.generation ?? 1 },
    ...(claim.podClaimName ? { podClaimName: claim.podClaimName } : {}),
    requests: [{ name: d.request, devices: [{ driver: DRA_DRIVER, pool: d.pool, name: d.device, attributes }] }],
  };
}

/** The CDI spec of a claim: one CDI device per prepared device. */
export function cdiSpec(loc: FileLocations, claim: ClaimIdentity, devices: readonly PreparedDevice[]): object {
  return {
    cdiVersion: CDI_VERSION,
    kind: CDI_KIND,
    devices: devices.map((d) => ({
      name: cdiDeviceName(claim.uid, d.request),
      containerEdits: {
        deviceNodes: [{ path: '/dev/vfio/vfio' }, { path: `/dev/vfio/${d.iommuGroup}` }],
        mounts: [
          {
            hostPath: metadataHostPath(loc, claim.uid, d.request),
            containerPath: metadataContainerPath(claim, d.request),
            options: ['ro', 'nosuid', 'nodev', 'bind'],
          },
        ],
      },
    })),
  };
}

/** Writes `text` to `file` atomically unless it already holds exactly that; true if written. */
export function writeFileIfChanged(file: string, text: string): boolean {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return true;
}

/** Writes the claim's metadata files and CDI spec; returns how many files changed. */
export function writeClaimFiles(loc: FileLocations, claim: ClaimIdentity, devices: readonly PreparedDevice[]): number {
  let written = 0;
  for (const d of devices) {
    if (writeFileIfChanged(metadataHostPath(loc, claim.uid, d.request), `${JSON.stringify(metadataDocument(claim, d), null, 2)}\n`)) written++;
  }
  // The spec last: the runtime must never see a mount whose source is not there yet.
  if (writeFileIfChanged(cdiSpecPath(loc, claim.uid), `${JSON.stringify(cdiSpec(loc, claim, devices), null, 2)}\n`)) written++;
  return written;
}

/** Removes the claim's CDI spec and metadata directory (and nothing else); missing is fine. */
export function removeClaimFiles(loc: FileLocations, uid: string): void {
  fs.rmSync(cdiSpecPath(loc, uid), { force: true });
  fs.rmSync(claimMetadataDir(loc, uid), { recursive: true, force: true });
}
