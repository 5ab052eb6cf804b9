/**
 * Accessibility checks with axe-core in the test browser, without weakening any page's CSP.
 *
 * The pages allow no script at all (`default-src 'none'`), so `page.addScriptTag` (an
 * inline or same-page `<script>`) is blocked, as it should be. axe's source is instead
 * evaluated through the DevTools protocol (`page.evaluate` with a string: Runtime.evaluate),
 * which runs in the page's main world as the debugger does and is not subject to the page's
 * CSP — the policy the browser enforces for the page's own content stays exactly as served,
 * and any violation would still be reported on the console (support/chromium.ts fails on it).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** One axe violation, as reported. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core on the page (WCAG 2.0/2.1 A and AA rules and axe's best practices) and
 * returns its violations. The width of the viewport at the time is what is checked.
 */
export async function runAxe(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate('typeof window.axe === "object"');
  if (!loaded) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: unknown): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[]; failureSummary?: string }> }> }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`.trim()) }));
  });
}

/** A readable list of violations for a failed assertion. */
export function describeViolations(where: string, violations: AxeViolation[]): string {
  return violations.map((v) => `${where}: ${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.join('\n  ')}`).join('\n');
}
