// Hosted pages: how they look (render.ts) and how they are sent, with the same security
// headers for every one (send-page.ts); the "your devices" page (account.ts, its routes in
// account-routes.ts).
export { ACCOUNT_PATH, accountRoutes } from './account-routes.js';
export { describeDevice, relativeTime, renderAccountPage, type AccountConsent, type AccountDevice, type AccountDone, type PasswordErrors } from './account.js';
export { escapeHtml, renderLoginPage, type LoginFieldErrors, renderMessagePage, renderPage, renderSignedInPage, type SignOutScope } from './render.js';
export { pageContentSecurityPolicy, pageHeaders, sendPage, type SendPageOptions } from './send-page.js';
export { createFormCsrf, type FormCsrf } from './form-csrf.js';
export { STYLESHEET, STYLESHEET_PATH, stylesheetRoutes } from './stylesheet.js';
