// The README quotes a few measured figures. They are written there by the tools that
// measure them, never by hand: each sits between `<!-- figure:NAME -->` and `<!-- /figure -->`.
//
//   - whoami-ratio: from docs/benchmarks.md (written by `npm run bench`), which calls
//     syncBenchmarkFigures() after writing it; `node scripts/readme-figures.mjs` does the same.
//   - start-times: from `node bench/start-time.mjs --write-readme`.
//
// test/docs/readme-figures.test.ts fails when the README and docs/benchmarks.md disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const README = join(root, 'README.md');
export const BENCHMARKS = join(root, 'docs', 'benchmarks.md');

/** The figures the README takes from docs/benchmarks.md (its summary table). */
export function benchmarkFigures(markdown) {
  const whoami = /^\| whoami req\/s, Tessera ÷ bare `node:http` \| [^|]+ \| ([0-9.]+) \|/m.exec(markdown);
  if (!whoami) throw new Error('docs/benchmarks.md has no whoami row in its summary table');
  return { 'whoami-ratio': whoami[1] };
}

/** Every `<!-- figure:NAME -->value<!-- /figure -->` of a text, by name. */
export function readFigures(text) {
  return Object.fromEntries([...text.matchAll(/<!-- figure:([a-z0-9-]+) -->([\s\S]*?)<!-- \/figure -->/g)].map((m) => [m[1], m[2]]));
}

/** Replaces the figures named in `values`; throws if the README lacks a marker. */
export function setFigures(text, values) {
  let out = text;
  for (const [name, value] of Object.entries(values)) {
    const marker = new RegExp(`(<!-- figure:${name} -->)[\\s\\S]*?(<!-- /figure -->)`, 'g');
    if (!marker.test(out)) throw new Error(`README.md has no <!-- figure:${name} --> marker`);
    out = out.replace(marker, (_m, open, close) => `${open}${value}${close}`);
  }
  return out;
}

/** Copies the benchmark figures from docs/benchmarks.md into the README. */
export function syncBenchmarkFigures() {
  const values = benchmarkFigures(readFileSync(BENCHMARKS, 'utf8'));
  writeFileSync(README, setFigures(readFileSync(README, 'utf8'), values));
  return values;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(syncBenchmarkFigures());
}
