// `npm test`: install what is missing, build, run every test, and end with one line of
// counts (`N passed, N failed, N skipped`). Extra arguments go to vitest. With
// TESSERA_TEST_SUMMARY=FILE the counts are also written there as JSON (for .ci/run, which
// runs the suite once per Node.js version and sums them).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, ensureInstalled } from './ensure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
ensureInstalled();
ensureBuilt();

const results = join(root, 'node_modules', '.tessera-test-results.json');
rmSync(results, { force: true });
const vitest = spawnSync(
  process.execPath,
  [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
/** The failed tests, as `file > name: first line of the error` (repeated at the end of CI). */
const failures = [];
if (existsSync(results)) {
  const report = JSON.parse(readFileSync(results, 'utf8'));
  passed = report.numPassedTests;
  failed = report.numFailedTests;
  skipped = report.numPendingTests + report.numTodoTests;
  const firstLine = (text) => String(text ?? '').split('\n').find((l) => l.trim())?.trim().slice(0, 300) ?? '';
  for (const file of report.testResults) {
    const name = file.name.startsWith(root) ? file.name.slice(root.length + 1) : file.name;
    // A test file that crashed before running its tests counts as a failure too.
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      failed += 1;
      failures.push(`${name}: ${firstLine(file.message)}`);
    }
    for (const test of file.assertionResults) {
      if (test.status === 'failed') failures.push(`${name} > ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`);
    }
  }
} else {
  failed = 1;
}
const code = vitest.status ?? 1;
if (code !== 0 && failed === 0) failed = 1;
if (failures.length > 0) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
if (process.env.TESSERA_TEST_SUMMARY) writeFileSync(process.env.TESSERA_TEST_SUMMARY, JSON.stringify({ node: process.version, passed, failed, skipped, exitCode: code, failures }));
process.exit(code);
