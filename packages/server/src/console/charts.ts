import { text } from './layout.js';

/** One bar of {@link barChart}: its label, value and colour class (see the stylesheet's .bar-*). */
export interface Bar {
  label: string;
  value: number;
  className: string;
}

/**
 * A small horizontal bar chart as inline SVG, drawn on the server: no script, no image
 * request, nothing from another origin, and styled only by the shared stylesheet's classes
 * (the CSP allows no inline style). For screen readers it is one image whose title and
 * description say every value; the numbers are also printed beside the bars.
 */
export function barChart(input: { id: string; title: string; bars: Bar[] }): string {
  const labelWidth = 118;
  const barMax = 110;
  const row = 22;
  const width = labelWidth + barMax + 40;
  const height = Math.max(1, input.bars.length) * row + 4;
  const max = Math.max(1, ...input.bars.map((b) => b.value));
  const desc = input.bars.map((b) => `${b.label}: ${b.value}`).join('; ') || 'No data.';
  const rows = input.bars.map((b, i) => {
    const y = i * row + 4;
    // A value above zero always shows at least a sliver, so it is never read as zero.
    const w = b.value === 0 ? 0 : Math.max(2, Math.round((b.value / max) * barMax));
    return `<text x="0" y="${y + 13}">${text(b.label)}</text><rect class="${text(b.className)}" x="${labelWidth}" y="${y}" width="${w}" height="16" rx="3"></rect><text x="${labelWidth + w + 5}" y="${y + 13}">${b.value}</text>`;
  });
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="${input.id}-title ${input.id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="${input.id}-title">${text(input.title)}</title><desc id="${input.id}-desc">${text(desc)}</desc>${rows.join('')}</svg>`;
}
