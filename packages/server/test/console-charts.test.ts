// The console's inline SVG bar charts (console/charts.ts): bars proportional to their values,
// a zero drawn as nothing, every value said in text for screen readers, every label escaped.
import { describe, expect, it } from 'vitest';
import { barChart } from '../src/console/charts.js';

const widths = (svg: string) => [...svg.matchAll(/<rect [^>]*width="(\d+)"/g)].map((m) => Number(m[1]));

describe('barChart', () => {
  it('draws bars proportional to their values, the largest at full length, zero as no bar', () => {
    const svg = barChart({ id: 'c', title: 'Deliveries', bars: [{ label: 'delivered', value: 10, className: 'bar-delivered' }, { label: 'pending', value: 5, className: 'bar-pending' }, { label: 'dead', value: 0, className: 'bar-dead' }] });
    const [full, half, none] = widths(svg);
    expect(none).toBe(0);
    expect(half).toBe(Math.round(full! / 2));
    expect(svg).toMatch(/^<svg class="chart"[^>]*role="img" aria-labelledby="c-title c-desc"/);
    expect(svg).toContain('<title id="c-title">Deliveries</title>');
    expect(svg).toContain('<desc id="c-desc">delivered: 10; pending: 5; dead: 0</desc>');
    expect(svg).not.toMatch(/style=/);
  });

  it('shows a sliver for a small value next to a large one, and copes with all zeros and no bars', () => {
    expect(widths(barChart({ id: 'c', title: 't', bars: [{ label: 'a', value: 100_000, className: 'x' }, { label: 'b', value: 1, className: 'x' }] }))[1]).toBeGreaterThanOrEqual(2);
    expect(widths(barChart({ id: 'c', title: 't', bars: [{ label: 'a', value: 0, className: 'x' }] }))).toEqual([0]);
    expect(barChart({ id: 'c', title: 't', bars: [] })).toContain('No data.');
  });

  it('escapes labels, titles and class names', () => {
    const svg = barChart({ id: 'c', title: '<script>', bars: [{ label: '"><img src=x>', value: 1, className: 'a"b' }] });
    expect(svg).not.toContain('<script>');
    expect(svg).not.toContain('<img');
    expect(svg).toContain('&lt;script&gt;');
    expect(svg).toContain('class="a&quot;b"');
  });
});
