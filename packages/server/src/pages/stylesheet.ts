import { createHash } from 'node:crypto';
import type { TesseraApp } from '../context.js';

// The one stylesheet of every hosted page (login, consent, sign-out confirmation, error
// pages, /account, /admin). Served by Tessera itself so that the pages' CSP can say
// `style-src 'self'` (no inline styles at all) and no page loads anything from elsewhere.
//
// Fit for a 320 px phone: every box is border-box, cards take the width they are given up to
// their maximum (padding included, so they never grow past the screen), long words (an
// email, a client id) wrap, and wide tables scroll inside their own focusable region.
// Colours meet WCAG AA contrast on their backgrounds (checked by axe-core in the browser tests).
const CSS = `*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d1f23;margin:0;padding:1rem;display:grid;place-items:center;min-height:100vh;line-height:1.4}
main{background:#fff;padding:2rem 1.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:100%;max-width:25rem;overflow-wrap:anywhere}
body.wide{display:block}body.wide main{max-width:72rem;margin:0 auto;padding:1.2rem 1rem}
h1{font-size:1.3rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input,select,textarea{width:100%;padding:.55rem;border:1px solid #767676;border-radius:6px;font-size:1rem;font-family:inherit;background:#fff;color:inherit}
textarea{min-height:4.5rem}
input[type=checkbox]{width:auto;margin-right:.4rem}label.check{display:flex;align-items:center}
a{color:#1f48b8}
:focus-visible{outline:3px solid #1f48b8;outline-offset:2px}
form{margin:0}button,a.button{display:inline-block;margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2d5bd7;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
button.secondary{background:#fff;color:#8a1c1c;border:1px solid #8a1c1c}
button.small{width:auto;margin:0;padding:.3rem .6rem;font-size:.85rem}
.hint{margin:.3rem 0 0;font-size:.85rem;color:#555}
.error{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:6px;font-size:.9rem}
.notice{background:#e6f4ea;color:#1e5631;padding:.5rem .7rem;border-radius:6px;font-size:.9rem}
.field-error{color:#8a1c1c;font-size:.85rem;margin:.2rem 0 0}
.secret{display:block;background:#f4f5f7;border:1px dashed #767676;border-radius:6px;padding:.6rem;font-family:ui-monospace,monospace;overflow-wrap:anywhere}
/* The devices page (pages/account.ts): one card per session, the current one outlined. */
.devices{list-style:none;padding:0;margin:0 0 1rem}.devices li{border:1px solid #ddd;border-radius:8px;padding:.7rem;margin:.6rem 0}
.devices li.current{border-color:#2d5bd7}.devices dl{margin:.3rem 0 0;font-size:.85rem;display:grid;grid-template-columns:auto 1fr;gap:.1rem .6rem}.devices dt{color:#555}.devices dd{margin:0}
.badge{display:inline-block;background:#2d5bd7;color:#fff;border-radius:4px;padding:0 .35rem;font-size:.75rem;margin-left:.3rem}
.status-delivered{background:#e6f4ea;color:#1e5631}.status-pending{background:#fff4d6;color:#6b4a00}.status-dead{background:#fde8e8;color:#8a1c1c}
.status-enabled{background:#e6f4ea;color:#1e5631}.status-paused{background:#fff4d6;color:#6b4a00}.status-disabled{background:#ececec;color:#333}
.pill{display:inline-block;border-radius:4px;padding:0 .4rem;font-size:.85rem;white-space:nowrap}
/* The admin console (console/): a top bar, tables that scroll on a phone, small charts. */
.topbar{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;margin:0 0 1rem;padding-bottom:.6rem;border-bottom:1px solid #ddd}
.topbar .brand{font-weight:600;margin-right:auto}
.topbar ul{display:flex;flex-wrap:wrap;gap:.2rem .9rem;list-style:none;margin:0;padding:0}
.topbar a[aria-current=page]{font-weight:600;text-decoration:none;color:#1d1f23}
.table-wrap{overflow-x:auto;margin:.5rem 0 1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e2e2e2;vertical-align:top}th{background:#f4f5f7}
.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}.inline>*{flex:1 1 10rem}.inline button{flex:0 0 auto;width:auto;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:8px;padding:.8rem}.card h2{margin-top:0}
.figure{font-size:1.8rem;font-weight:600;margin:.2rem 0}
.chart{width:100%;height:auto;max-width:20rem}.chart text{font-size:11px;fill:#1d1f23}
.bar-active{fill:#2d5bd7}.bar-delivered{fill:#2e7d4f}.bar-pending{fill:#a86b00}.bar-dead{fill:#b3261e}.bar-reason{fill:#5a4fcf}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}.actions form{flex:0 0 auto}.actions button{width:auto;margin-top:0}
dl.facts{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;font-size:.9rem}dl.facts dt{color:#555}dl.facts dd{margin:0}
fieldset{border:1px solid #ddd;border-radius:8px;margin:1rem 0;padding:.5rem .9rem .9rem}legend{font-weight:600;padding:0 .3rem}
@media (max-width:40rem){body{padding:.5rem}main{padding:1.2rem 1rem}body.wide main{padding:1rem .7rem}}
`;

const digest = createHash('sha256').update(CSS).digest('hex').slice(0, 12);

/**
 * Where the stylesheet is served. The name carries a hash of the content, so the file can be
 * cached for a year (immutable) and a new version is a new URL that no cache holds yet.
 */
export const STYLESHEET_PATH = `/assets/tessera-${digest}.css`;

/** The stylesheet's text (for tests that check what pages reference). */
export const STYLESHEET = CSS;

/** Serves the stylesheet at {@link STYLESHEET_PATH}: same origin, long-cached. */
export async function stylesheetRoutes(app: TesseraApp): Promise<void> {
  app.get(STYLESHEET_PATH, { schema: { tags: ['browser'], description: 'The stylesheet of the hosted pages (the name carries a hash of its content; cached as immutable).', produces: ['text/css'] } }, async (_request, reply) =>
    reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'public, max-age=31536000, immutable').send(CSS));
}
