// `npm run tessera -- …` runs scripts/tessera.mjs: it installs and builds what is missing
// (as `npm start` does) and then runs the CLI with the given arguments. What it does on a
// fresh clone (no node_modules, no dist) is shown by the README's measurement; here: the
// arguments, the exit code and a clean stdout come through.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = mkdtempSync(join(tmpdir(), 'tessera-wrapper-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function tessera(...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_DATA_DIR: dataDir };
  delete env.TESSERA_DATABASE_URL;
  delete env.TESSERA_CONFIG;
  return spawnSync(process.execPath, [join(root, 'scripts', 'tessera.mjs'), ...args], { cwd: root, env, encoding: 'utf8' });
}

describe('npm run tessera (scripts/tessera.mjs)', () => {
  it('--help prints the CLI usage on stdout and exits 0', { timeout: 120_000 }, () => {
    const run = tessera('--help');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.startsWith('tessera: the Tessera session authority')).toBe(true);
  });

  it('passes arguments through: --json output alone on stdout, failures with the CLI\'s exit code', { timeout: 120_000 }, () => {
    const created = tessera('users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--json');
    expect(created.status, created.stderr).toBe(0);
    const id = (JSON.parse(created.stdout) as { user: { id: string } }).user.id;
    const listed = tessera('sessions', 'list', '--user', 'alice@example.com', '--json');
    expect(listed.status, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({ sessions: [] });
    const missing = tessera('sessions', 'list', '--user', 'ghost');
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('no such user "ghost"');
    expect(tessera('sessions', 'list').status).toBe(2);
    expect(id).toMatch(/^usr_/);
  });
});
