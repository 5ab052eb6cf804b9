export { buildServer, redactUrl, type BuildOptions } from './app.js';
export { startServer, readConfig, type RunningServer } from './start.js';
export type { ServerContext, TesseraApp } from './context.js';
