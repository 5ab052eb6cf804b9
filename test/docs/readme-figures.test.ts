// The README's measured figures come from the measurements (scripts/readme-figures.mjs),
// not from memory: they must equal what docs/benchmarks.md says.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM script without declarations
import { BENCHMARKS, README, benchmarkFigures, readFigures, setFigures } from '../../scripts/readme-figures.mjs';

describe('README figures', () => {
  it('the whoami ratio in the README is the one docs/benchmarks.md measured', () => {
    const fromBench = benchmarkFigures(readFileSync(BENCHMARKS, 'utf8')) as Record<string, string>;
    const inReadme = readFigures(readFileSync(README, 'utf8')) as Record<string, string>;
    expect(inReadme['whoami-ratio']).toBeDefined();
    expect(inReadme['whoami-ratio']).toBe(fromBench['whoami-ratio']);
  });

  it('the README quotes the measured start times of npm start', () => {
    const inReadme = readFigures(readFileSync(README, 'utf8')) as Record<string, string>;
    expect(inReadme['start-times']).toMatch(/cold.*\d+ s.*warm.*\d+(\.\d+)? s/s);
  });

  it('setFigures replaces only the marked value and refuses a missing marker', () => {
    const text = 'a <!-- figure:x -->1<!-- /figure --> b';
    expect(setFigures(text, { x: '2' })).toBe('a <!-- figure:x -->2<!-- /figure --> b');
    expect(() => setFigures(text, { y: '2' })).toThrow(/figure:y/);
    expect(() => benchmarkFigures('# no table')).toThrow(/whoami/);
  });
});
