// The KubeVirt example and the docs agree with the code: the VMI names the ResourceClaim the
// controller makes for examples/claim.yaml, through request `apqn`, on an s390x guest.
import * as fs from 'node:fs';
import test from 'ava';
import * as yaml from 'js-yaml';
import { CLAIM_REQUEST, DEVICE_CLASS, DRA_DRIVER } from '../../src/api/dra.js';

interface Vmi {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    architecture?: string;
    resourceClaims?: Array<{ name: string; resourceClaimName?: string }>;
    domain: { devices: { hostDevices?: Array<{ name: string; claimName?: string; requestName?: string }> } };
  };
}

test('examples/kubevirt/vmi.yaml uses the claim of examples/claim.yaml through request apqn', (t) => {
  const vmi = yaml.load(fs.readFileSync('examples/kubevirt/vmi.yaml', 'utf8')) as Vmi;
  const claim = yaml.load(fs.readFileSync('examples/claim.yaml', 'utf8')) as { metadata: { name: string; namespace: string }; spec: { guest?: { name?: string } } };
  t.is(vmi.kind, 'VirtualMachineInstance');
  t.is(vmi.spec.architecture, 's390x');
  t.is(vmi.metadata.namespace, claim.metadata.namespace);
  t.is(claim.spec.guest?.name, vmi.metadata.name);
  const hostDevices = vmi.spec.domain.devices.hostDevices ?? [];
  t.is(hostDevices.length, 1, 'one vfio-ap host device per guest');
  const entry = vmi.spec.resourceClaims?.find((c) => c.name === hostDevices[0]!.claimName);
  t.is(entry?.resourceClaimName, claim.metadata.name);
  t.is(hostDevices[0]!.requestName, CLAIM_REQUEST);
});

test('the README KubeVirt section names the driver, the class, the request and the KubeVirt settings', (t) => {
  const doc = fs.readFileSync('README.md', 'utf8');
  for (const needle of [DRA_DRIVER, DEVICE_CLASS, `requestName: ${CLAIM_REQUEST}`, 'HostDevicesWithDRA', 'mediatedDeviceTypes: []', 'externalResourceProvider: true', 'VFIO AP Passthrough Device']) {
    t.true(doc.includes(needle), needle);
  }
});
