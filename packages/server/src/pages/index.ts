// Hosted pages: how they look (render.ts) and how they are sent, with the same security
// headers for every one (send-page.ts).
export { escapeHtml, renderLoginPage, renderMessagePage, renderPage, renderSignedInPage, type SignOutScope } from './render.js';
export { pageContentSecurityPolicy, pageHeaders, sendPage, type SendPageOptions } from './send-page.js';
