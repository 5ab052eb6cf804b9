'use strict';

/**
 * Hooks into nodebb-plugin-session-sharing so that a shared cookie of an ended Tessera
 * session no longer logs anyone in.
 *
 * Why: session-sharing trusts any cookie whose HS256 signature verifies (and whose exp, if
 * any, has not passed). When Tessera ends a session without the browser (an admin revokes
 * it, a ban, a password change, expiry), the browser keeps the cookie; after this plugin
 * revoked the NodeBB sessions, the next page load would rebuild one from that cookie.
 *
 * session-sharing fires `static:sessionSharing.verifyUser` ({ uid, isNewUser, token }) after
 * it verified the cookie and before it logs the user in; an error thrown there stops the
 * login. It then fires `filter:sessionSharing.error` ({ error, res, settings, handleAsGuest });
 * setting `handleAsGuest` makes it treat the visitor as a guest (its guest redirect, if
 * set, sends them to log in again) instead of failing the page. Both hooks are in
 * julianlam/nodebb-plugin-session-sharing library.js (plugin.verifyUser, plugin.addMiddleware).
 *
 * @example
 * // plugin.json: { "hook": "static:sessionSharing.verifyUser", "method": "refuseEndedSessionCookie" }
 */

const { nodebb } = require('./nodebb');
const { isEndedSessionCookie } = require('./ended-sessions');
const { loadJose } = require('./logout-token');
const { sessionSharingSettings, claimOf } = require('./shared-cookie');

const ENDED_SESSION_ERROR = 'tessera-session-ended';

/** static:sessionSharing.verifyUser — throws when the cookie belongs to an ended session. */
async function refuseEndedSessionCookie({ uid, token }) {
	if (typeof token !== 'string') return;
	const { db, meta, winston } = nodebb();
	const { decodeJwt } = await loadJose();
	let payload;
	try {
		// No signature check needed: session-sharing verified this very token with its secret
		// just before firing the hook.
		payload = decodeJwt(token);
	} catch {
		return;
	}
	const { parent } = await sessionSharingSettings(meta);
	const sid = claimOf(payload, parent, 'sid');
	const iat = claimOf(payload, parent, 'iat');
	if (await isEndedSessionCookie(db, { uid, sid: typeof sid === 'string' ? sid : undefined, iat })) {
		winston.info(`[plugins/tessera] refused a shared cookie of an ended Tessera session (uid ${uid}${typeof sid === 'string' ? `, session ${sid}` : ''})`);
		throw new Error(ENDED_SESSION_ERROR);
	}
}

/**
 * filter:sessionSharing.error — our refusal means "guest", not "error page". The dead cookie
 * is also cleared (with session-sharing's own cookie name and domain), so that it is not
 * presented, and refused, on every page load.
 */
async function treatEndedSessionCookieAsGuest(data) {
	if (!data || !data.error || data.error.message !== ENDED_SESSION_ERROR) return data;
	data.handleAsGuest = true;
	const settings = data.settings || {};
	if (data.res && typeof data.res.clearCookie === 'function' && typeof settings.cookieName === 'string' && settings.cookieName) {
		data.res.clearCookie(settings.cookieName, settings.cookieDomain ? { domain: settings.cookieDomain, path: '/' } : { path: '/' });
	}
	return data;
}

module.exports = { refuseEndedSessionCookie, treatEndedSessionCookieAsGuest, ENDED_SESSION_ERROR };
