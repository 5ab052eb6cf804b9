// Small statistics helpers shared by the benchmarks.

/** The value at quantile q (0..1) of a list of numbers, by nearest rank. */
export function quantile(values, q) {
  return quantileOfSorted([...values].sort((a, b) => a - b), q);
}

function quantileOfSorted(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median (the mean of the two middle values for an even count). */
export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Rounds to `digits` decimals. */
export const round = (value, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** n, p50, p90, p99, max and min of a list of millisecond timings, rounded to `digits` decimals. */
export function summarizeMs(values, digits) {
  // One sort for every figure, and no Math.max(...values): spreading a list of some 100,000
  // values or more as arguments overflows the call stack (a five-minute run of bench/ssf.mjs).
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: values.length,
    p50Ms: round(quantileOfSorted(sorted, 0.5), digits),
    p90Ms: round(quantileOfSorted(sorted, 0.9), digits),
    p99Ms: round(quantileOfSorted(sorted, 0.99), digits),
    maxMs: round(sorted.length ? sorted[sorted.length - 1] : -Infinity, digits),
    minMs: round(sorted.length ? sorted[0] : Infinity, digits),
  };
}
