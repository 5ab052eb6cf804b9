'use strict';

/**
 * NodeBB sessions and the Tessera sessions they came from.
 *
 * NodeBB keeps the sessions of a user in the sorted set `uid:<uid>:sessions` (member: the
 * express-session id, score: the login time, `user.auth.addSession` in src/user/auth.js) and
 * each session in its session store (`db.sessionStoreGet`). When session-sharing logs a user
 * in from Tessera's shared cookie, NodeBB fires `action:user.loggedIn` ({ uid, req }, from
 * `onSuccessfulLogin` in src/controllers/authentication.js); the plugin then writes the
 * cookie's Tessera `sid` and `iat` into that NodeBB session (`req.session.tessera`).
 *
 * A logout token then ends exactly the NodeBB sessions of the Tessera sessions it ended —
 * never one started after the revocation, however late the token arrives (Tessera retries
 * a failed delivery for up to a day, signing each attempt afresh;
 * docs/decisions/0006-late-logouts.md).
 *
 * @example
 * await linkSession(nodebb(), { uid, req });                     // action:user.loggedIn
 * const ended = await endLocalSessions(nodebb(), 42, { sids: ['ses_1'], revokedAt });
 */

const { readSettings } = require('./settings');
const { readSharedCookie } = require('./shared-cookie');
const { resolveUid } = require('./id-mapping');

/**
 * action:user.loggedIn — remembers in the new NodeBB session which Tessera session (the
 * shared cookie's `sid`) it came from. Only for a cookie that verifies with session-sharing's
 * secret and names this very user: a local password login in a browser that happens to hold
 * someone's cookie is not a Tessera session.
 */
async function linkSession(modules, { uid, req }) {
	if (!req || !req.session || !(Number(uid) > 0)) return false;
	const cookie = await readSharedCookie(modules, req, { verify: true });
	if (!cookie || !cookie.sid || cookie.id === undefined) return false;
	const configured = await readSettings(modules.meta);
	const found = await resolveUid(modules, configured.ok ? configured.settings : { sessionSharingName: '' }, cookie.id);
	if (!found || found.uid !== Number(uid)) return false;
	req.session.tessera = { sid: cookie.sid, ...(cookie.iat !== undefined ? { iat: cookie.iat } : {}) };
	// Saved now: NodeBB saved the session before firing the hook, and the redirect that
	// follows session-sharing's login may be answered before express-session would save it.
	if (typeof req.session.save === 'function') {
		await new Promise((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve())));
	}
	return true;
}

/**
 * Whether a logout (`ended`: `sid` of one session, or user-wide `sids` and/or `revokedAt`)
 * covers a NodeBB session: by its Tessera `link` when it has one, else by its NodeBB login
 * time (`loginAt`, the forum's clock — the only time such a session has).
 */
function covers(ended, link, loginAt) {
	if (link && typeof link.sid === 'string') {
		if (ended.sid) return link.sid === ended.sid;
		if (ended.sids) return ended.sids.includes(link.sid);
		// Unlisted user-wide end: the cookie's iat is on Tessera's clock, like revokedAt.
		return typeof link.iat === 'number' ? link.iat * 1000 <= ended.revokedAt : loginAt <= ended.revokedAt;
	}
	// Not logged in from a Tessera cookie (a local login, or before this plugin linked
	// sessions): only those begun before the revocation, as the 0.1 plugin ended all of them.
	return loginAt <= ended.revokedAt;
}

/**
 * Ends the NodeBB sessions of `uid` that the logout covers, with NodeBB's own
 * `user.auth.revokeSession` (destroys them in the session store and removes them from
 * `uid:<uid>:sessions`). Returns how many it ended.
 */
async function endLocalSessions({ db, user }, uid, ended) {
	const entries = await db.getSortedSetRangeWithScores(`uid:${uid}:sessions`, 0, -1);
	const ids = [];
	for (const { value: id, score } of entries) {
		const stored = await db.sessionStoreGet(id);
		// A session already gone from the store: revoking it just tidies the sorted set.
		if (!stored || covers(ended, stored.tessera, Number(score))) ids.push(id);
	}
	if (ids.length) await user.auth.revokeSession(ids, uid);
	return ids.length;
}

module.exports = { linkSession, endLocalSessions, covers };
