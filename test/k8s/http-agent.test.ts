// Connection reuse (src/k8s/http-agent.ts): API calls through client-node share keep-alive
// connections instead of opening one per request, and so do the project's own clients.
import test, { type ExecutionContext } from 'ava';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { getJson, loadKubeConfig } from '../../src/k8s/client.js';
import { shareConnections } from '../../src/k8s/http-agent.js';
import { kubeConfig, kubeconfigPath } from '../support/cluster.js';

shareConnections(k8s.KubeConfig);

/** Counts the connections opened to the test API server from now on. */
function countConnections(t: ExecutionContext): () => number {
  const port = Number(new URL(kubeConfig().getCurrentCluster()!.server).port);
  let opened = 0;
  const proto = https.Agent.prototype as unknown as { createConnection: (...args: unknown[]) => unknown };
  const original = proto.createConnection;
  proto.createConnection = function (this: https.Agent, ...args: unknown[]) {
    const options = args[0] as { port?: number | string };
    if (Number(options?.port) === port) opened++;
    return original.apply(this, args);
  };
  t.teardown(() => {
    proto.createConnection = original;
  });
  return () => opened;
}

test.serial('sequential API calls reuse one connection, parallel calls add only what they need', async (t) => {
  const kc = kubeConfig();
  const opened = countConnections(t);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  // Another KubeConfig object for the same cluster shares the connections too.
  const other = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.readNamespace({ name: 'default' }); // may open the first connection
  const before = opened();
  for (let i = 0; i < 20; i++) {
    await core.readNamespace({ name: 'default' });
    await other.listNamespace({ limit: 1 });
  }
  t.is(opened() - before, 0, '40 sequential calls after the first opened no new connection');
  await Promise.all(Array.from({ length: 4 }, () => core.readNamespace({ name: 'default' })));
  t.true(opened() - before <= 4, `4 parallel calls opened ${opened() - before} connections`);
});

test.serial("the project's own requests reuse connections, with a ClusterConfig or a client-node KubeConfig", async (t) => {
  const opened = countConnections(t);
  const light = loadKubeConfig(kubeconfigPath());
  const kc = kubeConfig();
  await getJson(light, '/api/v1/namespaces/default'); // may open the first connection
  await getJson(kc, '/api/v1/namespaces/default');
  const before = opened();
  for (let i = 0; i < 20; i++) {
    await getJson(light, '/api/v1/namespaces/default');
    await getJson(loadKubeConfig(kubeconfigPath()), '/api/v1/namespaces/default');
    await getJson(kc, '/api/v1/namespaces/default');
  }
  t.is(opened() - before, 0, '60 sequential requests after the first ones opened no new connection');
});

test.serial('different servers or TLS settings do not share an agent', async (t) => {
  const make = (server: string, skipTLSVerify: boolean) => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server, skipTLSVerify }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    return kc;
  };
  const agentOf = async (kc: k8s.KubeConfig) => {
    const context = new k8s.RequestContext('https://example.invalid/', k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(context);
    return context.getAgent();
  };
  const a = await agentOf(make('https://127.0.0.1:1', true));
  t.is(await agentOf(make('https://127.0.0.1:1', true)), a, 'same server and settings: one agent');
  t.not(await agentOf(make('https://127.0.0.1:2', true)), a, 'another server');
  t.not(await agentOf(make('https://127.0.0.1:1', false)), a, 'verifying TLS or not');
  t.true((a as unknown as { keepAlive: boolean }).keepAlive, 'keep-alive');
});
