// Small CRDs of the k8s-layer tests' own (group test.ap.s390x.io), so these tests do not
// depend on the project's CRDs: Widget (namespaced) and Gadget (cluster-scoped), both with a
// status subresource and schemas that keep whatever they are given.
import { ApiextensionsV1Api, type V1CustomResourceDefinition, type V1JSONSchemaProps } from '@kubernetes/client-node';
import { installCrds } from '../../src/k8s/crds.js';
import { CustomResourceClient, isConflict, retryOnConflict, type CustomResourceType } from '../../src/k8s/client.js';
import { kubeConfig } from '../support/cluster.js';

export const TEST_GROUP = 'test.ap.s390x.io';

export const WidgetType: CustomResourceType = {
  group: TEST_GROUP,
  version: 'v1',
  plural: 'widgets',
  kind: 'Widget',
  namespaced: true,
};

export const GadgetType: CustomResourceType = {
  group: TEST_GROUP,
  version: 'v1',
  plural: 'gadgets',
  kind: 'Gadget',
  namespaced: false,
};

export interface TestObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    uid?: string;
    finalizers?: string[];
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

function crd(type: CustomResourceType): V1CustomResourceDefinition {
  // The typed client serialises V1JSONSchemaProps by its TypeScript names (x_kubernetes_…);
  // a key spelt the YAML way would be dropped without a word.
  const open: V1JSONSchemaProps = { type: 'object', x_kubernetes_preserve_unknown_fields: true };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${type.plural}.${type.group}` },
    spec: {
      group: type.group,
      scope: type.namespaced ? 'Namespaced' : 'Cluster',
      names: { plural: type.plural, singular: type.kind.toLowerCase(), kind: type.kind, listKind: `${type.kind}List` },
      versions: [
        {
          name: type.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
        },
      ],
    },
  };
}

let installed: Promise<void> | undefined;

/** True when both CRDs are already served (another test file installed them). */
async function alreadyServed(): Promise<boolean> {
  const api = kubeConfig().makeApiClient(ApiextensionsV1Api);
  for (const type of [WidgetType, GadgetType]) {
    const found = await api.readCustomResourceDefinition({ name: `${type.plural}.${type.group}` }).catch(() => undefined);
    if (!found?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
  }
  return true;
}

/**
 * Installs Widget and Gadget once per test process. Test files run in parallel processes:
 * skip when already served (replacing a CRD makes the server rebuild its handlers), and retry
 * when two processes create at once.
 */
export function installTestCrds(): Promise<void> {
  installed ??= retryOnConflict(
    async () => {
      if (!(await alreadyServed())) await installCrds(kubeConfig(), [crd(WidgetType), crd(GadgetType)]);
    },
    { attempts: 10, initialDelayMs: 200, retryable: (err) => isConflict(err) },
  );
  return installed;
}

export async function widgets(): Promise<CustomResourceClient<TestObject>> {
  await installTestCrds();
  return new CustomResourceClient<TestObject>(kubeConfig(), WidgetType);
}

export async function gadgets(): Promise<CustomResourceClient<TestObject>> {
  await installTestCrds();
  return new CustomResourceClient<TestObject>(kubeConfig(), GadgetType);
}
