// kubectl apqn completion (cobra's __complete answer), from the typed words.
import test from 'ava';
import { complete, kubeconfigIn, renderCompletion, type CompletionSource } from '../../src/kubectl-apqn/complete.js';

const source: CompletionSource = { nodes: async () => ['node-a', 'node-b', 'other'], namespaces: async () => ['keys', 'payments'] };
const broken: CompletionSource = { nodes: async () => Promise.reject(new Error('no cluster')), namespaces: async () => Promise.reject(new Error('no cluster')) };
const words = async (...w: string[]) => complete(w, source);

test('the command, with what it does; then only what fits the word typed so far', async (t) => {
  t.deepEqual((await words('')).candidates.map((c) => c.split('\t')[0]), ['matrix', 'status', 'plan', 'capacity']);
  t.deepEqual((await words('st')).candidates, ['status\treservations and claims, one line each']);
  t.is((await words('')).directive, 4, 'no file names');
  t.deepEqual((await words('bogus', '')).candidates, []);
});

test('flags of the command, and the values of the flags that take one', async (t) => {
  t.deepEqual((await words('status', '--')).candidates, ['--namespace', '--all-namespaces', '--kubeconfig', '--color', '--output', '--help']);
  t.deepEqual((await words('matrix', '--o')).candidates, ['--output']);
  t.deepEqual((await words('matrix', '-o', '')).candidates, ['json', 'yaml']);
  t.deepEqual((await words('plan', '--output', 'y')).candidates, ['yaml']);
  t.deepEqual((await words('status', '--output=j')).candidates, ['--output=json']);
  t.deepEqual((await words('status', '--color', '')).candidates, ['auto', 'always', 'never']);
  t.deepEqual((await words('status', '-n', 'p')).candidates, ['payments']);
});

test('matrix completes one node; files for -f and --kubeconfig; nothing else', async (t) => {
  t.deepEqual((await words('matrix', 'node')).candidates, ['node-a', 'node-b']);
  t.deepEqual((await words('matrix', '-o', 'json', '')).candidates, ['node-a', 'node-b', 'other'], 'a flag and its value are not the node');
  t.deepEqual((await words('matrix', 'node-a', '')).candidates, [], 'one node only');
  t.deepEqual(await words('plan', '-f', ''), { candidates: [], directive: 0 });
  t.deepEqual(await words('status', '--kubeconfig', ''), { candidates: [], directive: 0 });
  t.deepEqual((await words('status', '')).candidates, []);
});

test('a cluster that cannot answer gives no candidates, never an error', async (t) => {
  t.deepEqual(await complete(['matrix', ''], broken), { candidates: [], directive: 4 });
  t.deepEqual(await complete(['status', '-n', ''], broken), { candidates: [], directive: 4 });
});

test('the answer is cobra\'s: candidates, then :directive; --kubeconfig is taken from the typed words', (t) => {
  t.is(renderCompletion({ candidates: ['json', 'yaml'], directive: 4 }), 'json\nyaml\n:4\n');
  t.is(kubeconfigIn(['matrix', '--kubeconfig', '/k', '']), '/k');
  t.is(kubeconfigIn(['matrix', '--kubeconfig=/k2', '']), '/k2');
  t.is(kubeconfigIn(['matrix', '']), undefined);
});
