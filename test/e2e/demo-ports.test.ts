// `npm run demo`'s three ports are settable (TESSERA_PORT, TESSERA_DEMO_SITE_PORT,
// TESSERA_DEMO_FORUM_PORT), and when one is busy the message names that port and the
// variable that moves it (issue 18, point 4).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoPortsFromEnv, portInUseMessage, startDemo } from '../../scripts/demo-setup.mjs';
import { findFreePort } from './support/free-port.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('demo ports', () => {
  it('reads the three ports from the environment, with the defaults', () => {
    expect(demoPortsFromEnv({})).toEqual({ port: 4000, sitePort: 4001, forumPort: 4002 });
    expect(demoPortsFromEnv({ TESSERA_PORT: '5000', TESSERA_DEMO_SITE_PORT: '5001', TESSERA_DEMO_FORUM_PORT: '5002' })).toEqual({ port: 5000, sitePort: 5001, forumPort: 5002 });
    expect(() => demoPortsFromEnv({ TESSERA_DEMO_SITE_PORT: 'abc' })).toThrow(/TESSERA_DEMO_SITE_PORT must be a port number/);
    expect(() => demoPortsFromEnv({ TESSERA_DEMO_FORUM_PORT: '70000' })).toThrow(/TESSERA_DEMO_FORUM_PORT must be a port number/);
    expect(() => demoPortsFromEnv({ TESSERA_DEMO_FORUM_PORT: '4001' })).toThrow(/TESSERA_DEMO_FORUM_PORT and TESSERA_DEMO_SITE_PORT are both 4001/);
  });

  for (const [which, what, variable] of [['port', 'Tessera', 'TESSERA_PORT'], ['sitePort', 'the example site', 'TESSERA_DEMO_SITE_PORT'], ['forumPort', 'the example forum', 'TESSERA_DEMO_FORUM_PORT']] as const) {
    it(`names the busy port when ${what}'s is in use`, async () => {
      const blocker: Server = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const busy = (blocker.address() as { port: number }).port;
      const dataDir = mkdtempSync(join(tmpdir(), 'tessera-demo-ports-'));
      dirs.push(dataDir);
      const ports = { port: await findFreePort(), sitePort: 0, forumPort: 0, [which]: busy };
      try {
        const error = await startDemo({ ...ports, dataDir, logLevel: 'silent', appLog: () => {} }).then(
          async (demo) => {
            await demo.close();
            return null;
          },
          (e: unknown) => e,
        );
        expect(error).not.toBeNull();
        expect(portInUseMessage(error, ports)).toBe(`[tessera] port ${busy}, where ${what} should run, is in use: stop what runs there (an \`npm start\`?) or set ${variable} to a free port.`);
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
      }
    });
  }

  it('says nothing about ports for another failure', () => {
    expect(portInUseMessage(new Error('disk full'), { port: 1, sitePort: 2, forumPort: 3 })).toBeNull();
  });
});
