'use strict';

/**
 * NodeBB sessions and the Tessera sessions they came from.
 *
 * NodeBB keeps the sessions of a user in the sorted set `uid:<uid>:sessions` (member: the
 * express-session id, score: the login time, `user.auth.addSession` in src/user/auth.js) and
 * each session in its session store (`db.sessionStoreGet`). When session-sharing logs a user
 * in from Tessera's shared cookie — and, with `revalidate`, on every page load that
 * re-validates the cookie — NodeBB fires `action:user.loggedIn` ({ uid, req }, from
 * `onSuccessfulLogin` in src/controllers/authentication.js, without waiting for its
 * handlers); the plugin then records the cookie's Tessera `sid` and `iat` for that NodeBB
 * session id, in its own hash `tessera:session:<NodeBB session id>`.
 *
 * Not in the session object itself (plugin 0.2.0 wrote `req.session.tessera`): on the real
 * forum that write was lost for about one login in four — the hook runs after NodeBB has
 * answered, while the browser's next requests have already loaded the session without it,
 * and NodeBB's end-of-request save of those (csrf token, session-sharing's revalidation)
 * wrote the copy without the link back over it. A key that only this plugin writes cannot be
 * overwritten that way. A `tessera` entry that 0.2.0 left in a session is still read.
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

const DEFAULT_TTL_MS = 14 * 86_400_000;
// This process's memory of links already read (page views), so most cost no database call.
const known = new Map();
const MAX_KNOWN = 10_000;
const KNOWN_FOR_MS = 60_000;

function linkKey(sessionId) {
	return `tessera:session:${sessionId}`;
}

/** As long as the NodeBB session can live: its cookie's expiry, at least NodeBB's session TTL. */
function linkExpiry(meta, session, now) {
	const ttlSeconds = meta && typeof meta.getSessionTTLSeconds === 'function' ? Number(meta.getSessionTTLSeconds()) : NaN;
	const ttl = Number.isFinite(ttlSeconds) && ttlSeconds > 0 ? ttlSeconds * 1000 : DEFAULT_TTL_MS;
	const expires = session && session.cookie && session.cookie.expires ? new Date(session.cookie.expires).getTime() : NaN;
	return Math.max(now + ttl, Number.isFinite(expires) ? expires : 0);
}

function parseLink(raw) {
	if (!raw || typeof raw.sid !== 'string' || raw.sid === '') return null;
	const iat = Number(raw.iat);
	return { sid: raw.sid, ...(raw.iat !== undefined && raw.iat !== '' && Number.isFinite(iat) ? { iat } : {}) };
}

/**
 * action:user.loggedIn — records which Tessera session (the shared cookie's `sid`) the NodeBB
 * session came from. Only for a cookie that verifies with session-sharing's secret and names
 * this very user: a local password login in a browser that happens to hold someone's cookie
 * is not a Tessera session. Fired again on every re-validated page load: a link already
 * recorded costs one read.
 */
async function linkSession(modules, { uid, req }, now = Date.now()) {
	const sessionId = req && req.sessionID;
	if (typeof sessionId !== 'string' || sessionId === '' || !(Number(uid) > 0)) return false;
	const cookie = await readSharedCookie(modules, req, { verify: true });
	if (!cookie || !cookie.sid || cookie.id === undefined) return false;
	const configured = await readSettings(modules.meta);
	const found = await resolveUid(modules, configured.ok ? configured.settings : { sessionSharingName: '' }, cookie.id);
	if (!found || found.uid !== Number(uid)) return false;
	const { db } = modules;
	const link = { sid: cookie.sid, ...(cookie.iat !== undefined ? { iat: cookie.iat } : {}) };
	const recorded = parseLink(await db.getObject(linkKey(sessionId)));
	if (recorded && recorded.sid === link.sid && recorded.iat === link.iat) return true;
	// A hash write adds fields: the previous link's must not survive into the new one.
	if (recorded) await db.delete(linkKey(sessionId));
	await db.setObject(linkKey(sessionId), link);
	// NodeBB's session expiry is fixed at login (no rolling), so is the link's.
	await db.pexpireAt(linkKey(sessionId), linkExpiry(modules.meta, req.session, now));
	known.delete(sessionId);
	return true;
}

/**
 * The Tessera session behind NodeBB session `sessionId` ({ sid, iat? }), or null: the
 * plugin's record, or what plugin 0.2.0 wrote into the session (`stored`, when given).
 */
async function findLink({ db }, sessionId, stored) {
	const recorded = parseLink(await db.getObject(linkKey(sessionId)));
	if (recorded) return recorded;
	return parseLink(stored && stored.tessera);
}

/**
 * findLink for a page view, remembered in this process for a minute: a browser that signs in
 * to Tessera again moves its NodeBB session to the new Tessera session, and another NodeBB
 * process may have recorded that.
 */
async function linkOfRequest(modules, req, now = Date.now()) {
	const sessionId = req && req.sessionID;
	if (typeof sessionId !== 'string' || sessionId === '') return null;
	const cached = known.get(sessionId);
	if (cached && cached.until > now) return cached.link;
	const link = await findLink(modules, sessionId, req.session);
	if (link) {
		if (known.size >= MAX_KNOWN) known.clear();
		known.set(sessionId, { link, until: now + KNOWN_FOR_MS });
	}
	return link;
}

/** Forgets this process's memory of links (tests, and sessions this plugin ended). */
function forgetKnownLinks(sessionIds) {
	if (!sessionIds) known.clear();
	else for (const id of sessionIds) known.delete(id);
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
async function endLocalSessions(modules, uid, ended) {
	const { db, user } = modules;
	const entries = await db.getSortedSetRangeWithScores(`uid:${uid}:sessions`, 0, -1);
	const ids = [];
	for (const { value: id, score } of entries) {
		const stored = await db.sessionStoreGet(id);
		// A session already gone from the store: revoking it just tidies the sorted set.
		if (!stored || covers(ended, await findLink(modules, id, stored), Number(score))) ids.push(id);
	}
	if (ids.length) {
		await user.auth.revokeSession(ids, uid);
		forgetKnownLinks(ids);
		for (const id of ids) await db.delete(linkKey(id));
	}
	return ids.length;
}

module.exports = { linkSession, endLocalSessions, covers, findLink, linkOfRequest, forgetKnownLinks, linkKey };
