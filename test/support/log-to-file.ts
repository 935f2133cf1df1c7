// Loaded by ava into every test worker before its tests (package.json "ava.require"): when the
// test command gives a directory (hack/test.sh sets APQN_TEST_LOG_DIR), the logs of the
// components under test go to a file there instead of between the test results. Processes the
// tests start (`apqn-operator dev`, a controller child) are not affected: they do not load this.
import * as path from 'node:path';
import { logToFile } from '../../src/log.js';

const dir = process.env.APQN_TEST_LOG_DIR;
if (dir) logToFile(path.join(dir, `worker-${process.pid}.log`));
