// Request-based scheduling across nodes, and an agent that stops reporting.
import test from 'ava';
import { condition, harness, twoCardNode, waitUntil } from './runtime-support.js';

test('request-based: the controller picks a fitting node and queues, displacing the fewest host queues; placement is sticky', async (t) => {
  const h = await harness(t);
  const labels = { 'apqn-test': h.ns };
  // a: two CCA cards and an EP11 card; b: two EP11 cards.
  await h.agent('a', { ...twoCardNode, nodeLabels: labels });
  await h.agent('b', {
    cards: [
      { id: '0a', type: 'CEX8P', domains: '0000-0007' },
      { id: '0b', type: 'CEX8P', domains: '0000-0007' },
    ],
    heartbeatMs: 500,
    nodeLabels: labels,
  });
  await h.controller();

  await h.reserve('ep11', { nodeSelector: labels, request: { adapters: 2, domains: 1, mode: 'EP11', minCardType: 'CEX8' } });
  const ep11 = await h.waitFor('ep11', 'Ready', 'True');
  t.is(ep11.status?.nodeName, h.node('b'), 'only node b has two EP11 adapters');
  t.deepEqual(ep11.status?.matrix?.adapters, ['0a', '0b']);
  t.is(ep11.status?.apqns?.length, 2);
  t.deepEqual(ep11.status?.displacedQueues, undefined, 'a domain column of exactly the reserved pairs displaces nothing');

  await h.reserve('cca', { nodeSelector: labels, request: { adapters: 2, domains: 1, mode: 'CCA' } });
  const cca = await h.waitFor('cca', 'Ready', 'True');
  t.is(cca.status?.nodeName, h.node('a'));
  t.deepEqual(cca.status?.matrix?.adapters, ['05', '06']);
  // One domain for both cards: clearing that domain displaces only the EP11 card's queue in it.
  t.is(cca.status?.displacedQueues?.length, 1);

  // Nothing fits: a reason, and nothing placed.
  await h.reserve('huge', { nodeSelector: labels, request: { adapters: 3, domains: 1, mode: 'EP11' } });
  const huge = await h.waitFor('huge', 'Scheduled', 'False', 'NoFittingNode');
  t.regex(condition(huge, 'Scheduled')!.message, /no node fits/);
  t.is(huge.status?.nodeName, undefined);

  // Sticky: a later, equally good node does not move a placed reservation.
  await h.agent('c', {
    cards: [
      { id: '0c', type: 'CEX8P', domains: '0000-0007' },
      { id: '0d', type: 'CEX8P', domains: '0000-0007' },
    ],
    heartbeatMs: 500,
    nodeLabels: labels,
  });
  await waitUntil('node c to be known', async () => ((await h.clients.nodeStates.find(h.node('c')))?.status?.cards ? true : undefined));
  const still = await h.reservation('ep11');
  t.is(still?.status?.nodeName, h.node('b'));
  t.deepEqual(still?.status?.apqns, ep11.status?.apqns);
});

test('a stale heartbeat turns Bound and Ready Unknown (AgentUnavailable); a fresh one brings them back', async (t) => {
  const h = await harness(t, { heartbeatStaleMs: 2_500 });
  const agent = await h.agent('a', { ...twoCardNode, heartbeatMs: 300 });
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0001'] });
  await h.waitFor('vm', 'Ready', 'True');

  agent.pause();
  const stale = await h.waitFor('vm', 'Ready', 'Unknown', 'AgentUnavailable', 30_000);
  t.is(condition(stale, 'Bound')?.status, 'Unknown');
  t.regex(condition(stale, 'Ready')!.message, /last reported \d+ s ago/);

  agent.resume();
  await h.waitFor('vm', 'Ready', 'True', undefined, 30_000);
});

test('a reservation for a node without an agent waits, then proceeds when the agent appears', async (t) => {
  const h = await harness(t);
  await h.controller();
  await h.reserve('early', { nodeName: h.node('late'), apqns: ['05.0003'] });
  const waiting = await h.waitFor('early', 'Scheduled', 'False', 'NodeNotFound');
  t.regex(condition(waiting, 'Scheduled')!.message, /no APNodeState/);
  await h.agent('late', twoCardNode);
  await h.waitFor('early', 'Ready', 'True');
});
