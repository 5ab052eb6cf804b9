// Command-line options of a benchmark: node:util's parseArgs, plus `--help` (the benchmark's
// own header comment, which says what it measures and how to run it) and a one-line message
// for an unknown or malformed option instead of parseArgs' stack trace.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The leading `//` comment of a file, without the slashes: a benchmark's usage. */
function headerComment(url) {
  const lines = readFileSync(fileURLToPath(url), 'utf8').split('\n');
  const header = [];
  for (const line of lines) {
    if (!line.startsWith('//')) break;
    header.push(line.replace(/^\/\/ ?/, ''));
  }
  return `${header.join('\n')}\n`;
}

/**
 * parseArgs(config) for the benchmark at `url` (its `import.meta.url`): `--help` prints its
 * header comment and exits 0; an option parseArgs refuses prints the reason and exits 2.
 */
export function parseBenchArgs(url, config) {
  let parsed;
  try {
    parsed = parseArgs({ ...config, options: { ...config.options, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (error) {
    process.stderr.write(`${error.message}\n(--help says what this benchmark takes)\n`);
    process.exit(2);
  }
  if (parsed.values.help) {
    process.stdout.write(headerComment(url));
    process.exit(0);
  }
  delete parsed.values.help;
  return parsed;
}
