'use strict';

/**
 * What the plugin remembers in NodeBB's database (Redis, MongoDB or PostgreSQL alike, through
 * NodeBB's own db module), so that every NodeBB process behind a load balancer agrees:
 *
 * - `tessera:jti:<jti>`: logout tokens already received, until they expire (replay refusal);
 * - `tessera:ended:sid:<sid>`: Tessera sessions ended by a logout token;
 * - `tessera:ended:user:<uid>`: when all Tessera sessions of a NodeBB user were ended
 *   (hash: `at`, the latest such end; `unlistedAt`, the latest one whose token did not list
 *   the ended sessions), in milliseconds on Tessera's clock (the token's `revoked_at`).
 *
 * The last two let the plugin refuse a shared session-sharing cookie that outlived its
 * Tessera session (a session ended by an admin, a ban or expiry never reaches the browser,
 * so the cookie stays and session-sharing would otherwise log the user straight back in) —
 * and only such a cookie: a cookie of a session the user started after the end passes,
 * however late the logout token arrived (docs/decisions/0006-late-logouts.md).
 *
 * @example
 * if (!(await claimJti(db, claims.jti, (claims.exp + 30) * 1000))) refuse('replayed');
 */

function jtiKey(jti) {
	return `tessera:jti:${jti}`;
}
function sidKey(sid) {
	return `tessera:ended:sid:${sid}`;
}
function userKey(uid) {
	// Not the 0.1 plugin's `tessera:ended:uid:<uid>` (a string of seconds, set from the token's
	// iat, which was the late-logout bug): a new key, so the two never meet; the old ones expire.
	return `tessera:ended:user:${uid}`;
}

/**
 * Marks a token id as received; false when it already was. The counter increment is atomic
 * in every NodeBB database, so of two concurrent deliveries of one token only one wins, even
 * across NodeBB processes.
 */
async function claimJti(db, jti, keepUntilMs) {
	return claimOnce(db, jtiKey(jti), keepUntilMs);
}

/** One caller wins per key until `keepUntilMs` (atomic counter + expiry), in every process. */
async function claimOnce(db, key, keepUntilMs) {
	const count = Number(await db.incrObjectField(key, 'seen'));
	if (count !== 1) return false;
	try {
		await db.pexpireAt(key, keepUntilMs);
	} catch (error) {
		// A claim without expiry would stay forever: drop it and let the caller fail.
		await db.delete(key).catch(() => {});
		throw error;
	}
	return true;
}

/** Forgets a token id, so that the sender's retry of a logout that failed here is accepted. */
async function releaseJti(db, jti) {
	await db.delete(jtiKey(jti));
}

/**
 * Remembers, for `memoryMs` (as long as a shared cookie can live), what a logout ended:
 * the Tessera sessions `sids`, and for a user-wide end of `uid` its time `revokedAt` (ms)
 * and whether the token listed the ended sessions (`listed`).
 */
async function rememberEndedSessions(db, { sids = [], uid, userWide = false, listed = false, revokedAt, memoryMs, now = Date.now() }) {
	const until = now + memoryMs;
	for (const sid of sids) {
		await db.set(sidKey(sid), String(revokedAt));
		await db.pexpireAt(sidKey(sid), until);
	}
	if (uid && userWide) {
		const key = userKey(uid);
		const previous = (await db.getObject(key)) || {};
		// Keep the latest ends: a delayed retry of an older logout must not move them backwards.
		const fields = {};
		if (!(Number(previous.at) >= revokedAt)) fields.at = revokedAt;
		if (!listed && !(Number(previous.unlistedAt) >= revokedAt)) fields.unlistedAt = revokedAt;
		if (Object.keys(fields).length) await db.setObject(key, fields);
		await db.pexpireAt(key, until);
	}
}

/**
 * Whether a shared cookie (its decoded `sid` and `iat`) belongs to an ended Tessera session:
 * its `sid` was ended; or, for what no list of ended sessions covers, it was issued no later
 * than a user-wide end of `uid`. A cookie with a `sid` is judged by the lists where they
 * exist (exact); by time only against ends that did not list their sessions. A cookie
 * without `sid` or `iat` cannot prove it is newer than an end, so it is refused after one.
 */
async function isEndedSessionCookie(db, { uid, sid, iat }) {
	if (sid && (await db.exists(sidKey(sid)))) return true;
	if (uid) {
		const ended = (await db.getObject(userKey(uid))) || {};
		const limit = Number(sid ? ended.unlistedAt : ended.at);
		if (limit > 0 && !(typeof iat === 'number' && iat * 1000 > limit)) return true;
	}
	return false;
}

module.exports = { claimJti, claimOnce, releaseJti, rememberEndedSessions, isEndedSessionCookie };
