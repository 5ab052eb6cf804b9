'use strict';

/**
 * action:middleware.pageView — makes sure the NodeBB session of a signed-in page view is in
 * the user's session list `uid:<uid>:sessions`, the list that `user.auth.revokeSession`,
 * NodeBB's own "revoke sessions" and this plugin's logouts go through.
 *
 * Why: on the real forum (NodeBB 4.15.1), a sign-in through nodebb-plugin-sso-oauth2-multiple
 * 2.0.0 left the browser's session out of that list. The SSO plugin calls
 * `authenticationController.onSuccessfulLogin(req, uid)` itself, inside its passport verify
 * callback, before NodeBB's own `req.login` regenerates the session; NodeBB then calls
 * `onSuccessfulLogin` again for the new session, which returns early ("already called":
 * `req.loggedIn` and the same uid), so only the old, destroyed session id is listed. Such a
 * session could never be ended by a logout. The plugin lists it at its first page view, with
 * the login time NodeBB recorded in the session (`meta.datetime`).
 *
 * One database read per signed-in session and process (remembered in memory afterwards).
 *
 * @example
 * // plugin.json: { "hook": "action:middleware.pageView", "method": "listUnlistedSession" }
 */

const { nodebb } = require('./nodebb');

const LOG = '[plugins/tessera]';
const listed = new Set();
const MAX_LISTED = 10_000;

function remember(sessionId) {
	if (listed.size >= MAX_LISTED) listed.clear();
	listed.add(sessionId);
}

/** The hook. Resolves true when it added the session to the list (for logs and tests). */
async function listUnlistedSession(data) {
	const req = data && data.req;
	const uid = Number(req && req.uid);
	const sessionId = req && req.sessionID;
	if (!req || !req.loggedIn || !(uid > 0) || typeof sessionId !== 'string' || sessionId === '' || listed.has(sessionId)) return false;
	// A request signed in by an API token (Authorization: Bearer) gets a throw-away session that
	// NodeBB deliberately does not list and destroys when the answer is sent.
	if (req.headers && typeof req.headers.authorization === 'string' && /^bearer\s/i.test(req.headers.authorization)) return false;
	const { db, winston } = nodebb();
	try {
		const key = `uid:${uid}:sessions`;
		if ((await db.sortedSetScore(key, sessionId)) !== null) {
			remember(sessionId);
			return false;
		}
		const loginAt = Number(req.session && req.session.meta && req.session.meta.datetime);
		await db.sortedSetAdd(key, Number.isFinite(loginAt) && loginAt > 0 ? loginAt : Date.now(), sessionId);
		remember(sessionId);
		winston.info(`${LOG} listed a signed-in NodeBB session of uid ${uid} that NodeBB had not listed in uid:${uid}:sessions (a login plugin called onSuccessfulLogin before NodeBB's own login), so that logouts can end it`);
		return true;
	} catch (error) {
		winston.warn(`${LOG} could not check the session list of uid ${uid}: ${error && error.message ? error.message : error}`);
		return false;
	}
}

/** Forgets this process's memory (tests). */
function forgetListedSessions() {
	listed.clear();
}

module.exports = { listUnlistedSession, forgetListedSessions };
