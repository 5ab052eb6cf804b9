'use strict';

/**
 * What the plugin remembers in NodeBB's database (Redis, MongoDB or PostgreSQL alike, through
 * NodeBB's own db module), so that every NodeBB process behind a load balancer agrees:
 *
 * - `tessera:jti:<jti>`: logout tokens already received, until they expire (replay refusal);
 * - `tessera:ended:sid:<sid>`: Tessera sessions ended by a logout token;
 * - `tessera:ended:uid:<uid>`: when all Tessera sessions of a NodeBB user were ended.
 *
 * The last two let the plugin refuse a shared session-sharing cookie that outlived its
 * Tessera session (a session ended by an admin, a ban or expiry never reaches the browser,
 * so the cookie stays and session-sharing would otherwise log the user straight back in).
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
function uidKey(uid) {
	return `tessera:ended:uid:${uid}`;
}

/**
 * Marks a token id as received; false when it already was. The counter increment is atomic
 * in every NodeBB database, so of two concurrent deliveries of one token only one wins, even
 * across NodeBB processes.
 */
async function claimJti(db, jti, keepUntilMs) {
	const key = jtiKey(jti);
	const count = Number(await db.incrObjectField(key, 'seen'));
	if (count !== 1) return false;
	try {
		await db.pexpireAt(key, keepUntilMs);
	} catch (error) {
		// A claim without expiry would stay forever: drop it and let the caller fail (400, retry).
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
 * Remembers that Tessera session `sid` ended and/or that every session of `uid` ended at
 * `endedAtSeconds`, for `memoryMs` (as long as a shared cookie can live).
 */
async function rememberEndedSession(db, { sid, uid, endedAtSeconds, memoryMs, now = Date.now() }) {
	const until = now + memoryMs;
	if (sid) {
		await db.set(sidKey(sid), String(endedAtSeconds));
		await db.pexpireAt(sidKey(sid), until);
	}
	if (uid && !sid) {
		// Keep the latest end: a delayed retry of an older logout must not move it backwards.
		const previous = Number(await db.get(uidKey(uid)));
		if (!(previous >= endedAtSeconds)) await db.set(uidKey(uid), String(endedAtSeconds));
		await db.pexpireAt(uidKey(uid), until);
	}
}

/**
 * Whether a shared cookie (its decoded payload) belongs to an ended Tessera session: its
 * `sid` was ended, or it was issued (`iat`) no later than the end of all sessions of `uid`.
 */
async function isEndedSessionCookie(db, { uid, sid, iat }) {
	if (sid && (await db.exists(sidKey(sid)))) return true;
	if (uid) {
		const endedAt = Number(await db.get(uidKey(uid)));
		// A cookie without iat cannot prove it is newer than the end: refuse it too.
		if (endedAt > 0 && !(typeof iat === 'number' && iat > endedAt)) return true;
	}
	return false;
}

module.exports = { claimJti, releaseJti, rememberEndedSession, isEndedSessionCookie };
