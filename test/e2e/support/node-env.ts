/**
 * The environment of an in-process test node (startServer(readConfig(…))): any free port on
 * 127.0.0.1, plain-http cookies (loopback), no rate limits, no log lines; `extra` adds or
 * overrides settings (a database URL, an issuer shared by the nodes of one deployment).
 */
export function testNodeEnv(input: { dataDir: string; configFile: string; adminToken: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TESSERA_CONFIG: input.configFile,
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: input.dataDir,
    TESSERA_ADMIN_TOKEN: input.adminToken,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_LOG_LEVEL: 'silent',
    ...extra,
  };
}
