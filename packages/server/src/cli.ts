#!/usr/bin/env node
// The `tessera` executable. Everything lives in runCli (cli/run-cli.ts) so tests can run
// the same code in process; this file only wires it to the process.
import { runCli } from './cli/run-cli.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// Normally the event loop is empty by now and the process ends with `code`. Should a
// handle linger (a stuck connection after `start` closed), do not hang the terminal.
setTimeout(() => process.exit(code), 2_000).unref();
