// End-to-end tests that need the control plane to themselves: they run `apqn-operator dev`,
// whose controller watches every namespace and node, so they run after the main suite
// (hack/test.sh), never beside tests that create their own reservations and node states.
import base from './package.json' with { type: 'json' };

export default { ...base.ava, files: ['test/e2e/**/*.test.ts'], concurrency: 1 };
