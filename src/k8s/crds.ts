// Installs the project's CustomResourceDefinitions (crds/*.yaml) and waits until the API
// server serves them: Established + NamesAccepted, then the plural in discovery.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { logger, type Logger } from '../log.js';
import { waitFor } from './controlplane.js';
import { shareConnections } from './http-agent.js';

// This module uses client-node's generated clients, and so do the commands that install CRDs
// (`dev`, `controlplane`): their connections are shared too.
shareConnections(k8s.KubeConfig);

export const CRD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../crds');

/** Every CRD document in a directory (all *.yaml files, multi-document aware). */
export function loadCrds(dir = CRD_DIR): k8s.V1CustomResourceDefinition[] {
  const crds: k8s.V1CustomResourceDefinition[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    // client-node's own loader maps wire names (`default`, `enum`, `x-kubernetes-*`) onto its
    // model classes; plain js-yaml objects would lose those keys when the typed client serializes.
    for (const doc of k8s.loadAllYaml(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      const obj = doc as k8s.V1CustomResourceDefinition | null;
      if (obj?.kind === 'CustomResourceDefinition') crds.push(obj);
    }
  }
  return crds;
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && err.code === code;
}

/** Creates or updates each CRD, then waits until every one is served. */
export async function installCrds(
  kc: k8s.KubeConfig,
  crds = loadCrds(),
  log: Logger = logger('crds'),
  timeoutMs = 60_000,
): Promise<void> {
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    try {
      const existing = await api.readCustomResourceDefinition({ name });
      crd.metadata!.resourceVersion = existing.metadata!.resourceVersion;
      await api.replaceCustomResourceDefinition({ name, body: crd });
      log.info('CRD updated', { crd: name });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await api.createCustomResourceDefinition({ body: crd });
      log.info('CRD created', { crd: name });
    }
  }
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    await waitFor(
      `CRD ${name} Established and NamesAccepted`,
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        const conds = current.status?.conditions ?? [];
        const ok = (t: string) => conds.some((c) => c.type === t && c.status === 'True');
        return ok('Established') && ok('NamesAccepted') ? true : undefined;
      },
      timeoutMs,
    );
    await waitForDiscovery(kc, crd, timeoutMs);
  }
}

/** Waits until the group/version's discovery document lists the CRD's plural. */
async function waitForDiscovery(kc: k8s.KubeConfig, crd: k8s.V1CustomResourceDefinition, timeoutMs: number) {
  const group = crd.spec.group;
  const plural = crd.spec.names.plural;
  const client = kc.makeApiClient(k8s.CustomObjectsApi);
  for (const version of crd.spec.versions.filter((v) => v.served)) {
    await waitFor(
      `${plural}.${group}/${version.name} in discovery`,
      async () => {
        const list = (await client.getAPIResources({ group, version: version.name })) as k8s.V1APIResourceList;
        return list.resources.some((r) => r.name === plural) ? true : undefined;
      },
      timeoutMs,
    );
  }
}
