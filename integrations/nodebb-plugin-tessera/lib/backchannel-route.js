'use strict';

/**
 * POST /tessera/backchannel-logout — the forum's `backchannel_logout_uri`.
 *
 * Tessera POSTs `application/x-www-form-urlencoded` `logout_token=<JWT>` server to server.
 * NodeBB's global body parser (webserver.js, `bodyParser.urlencoded`) has already read the
 * body into `req.body` when this runs. Answers per OIDC Back-Channel Logout 1.0 §2.8: 200
 * with `Cache-Control: no-store` when the logout is done (or there was nothing to end),
 * 400 `{"error":"invalid_request"}` when the token is refused or the logout could not be
 * completed — Tessera retries anything but 200/204, so a transient failure here heals itself.
 *
 * @example
 * router.post('/tessera/backchannel-logout', handleBackchannelLogout);
 */

const { nodebb } = require('./nodebb');
const { readSettings } = require('./settings');
const { verifyLogoutToken, getRemoteKeys, LogoutTokenError, CLOCK_TOLERANCE_SECONDS } = require('./logout-token');
const { resolveUid } = require('./id-mapping');
const { claimJti, releaseJti, rememberEndedSessions } = require('./ended-sessions');
const { endLocalSessions } = require('./local-sessions');

const LOG = '[plugins/tessera]';

function send(res, status, body) {
	res.statusCode = status;
	res.setHeader('Cache-Control', 'no-store');
	if (body === undefined) {
		res.end();
		return;
	}
	res.setHeader('Content-Type', 'application/json; charset=utf-8');
	res.end(JSON.stringify(body));
}

function refuse(res, description) {
	send(res, 400, { error: 'invalid_request', error_description: description });
}

function isFormEncoded(req) {
	const type = String((req.headers && req.headers['content-type']) || '').split(';')[0].trim().toLowerCase();
	return type === 'application/x-www-form-urlencoded';
}

/** The single `logout_token` parameter, or null (missing, empty, repeated or not a string). */
function readLogoutToken(req) {
	if (!isFormEncoded(req)) return null;
	const body = req.body;
	if (body === null || typeof body !== 'object') return null;
	const value = body.logout_token;
	return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * Ends the NodeBB sessions a verified logout token asks for — exactly those of the Tessera
 * sessions it ended, never one the user started after the revocation (the token may be a
 * retry hours late; docs/decisions/0006-late-logouts.md) — and returns what was done, for
 * the log line. Throws when NodeBB's database fails (the caller answers 400 so Tessera
 * retries).
 */
async function endSessions(modules, settings, claims) {
	const { db } = modules;
	const found = claims.sub ? await resolveUid(modules, settings, claims.sub) : null;
	const userWide = !claims.sid;
	const ended = { sid: claims.sid, sids: userWide ? claims.sids : undefined, revokedAt: claims.revokedAt };
	// Remembered before the sessions are revoked, so that a page load racing with this request
	// cannot rebuild a NodeBB session from a shared cookie of an ended Tessera session.
	await rememberEndedSessions(db, {
		sids: claims.sid ? [claims.sid] : claims.sids || [],
		uid: found && found.uid,
		userWide,
		listed: Boolean(ended.sids),
		revokedAt: claims.revokedAt,
		memoryMs: settings.revocationMemoryMs,
	});
	if (!found) return null;
	const count = await endLocalSessions(modules, found.uid, ended);
	return { ...found, count };
}

/**
 * The route handler. Never throws: every outcome is an HTTP answer.
 */
async function handleBackchannelLogout(req, res) {
	let modules;
	try {
		modules = nodebb();
	} catch (error) {
		send(res, 500);
		return;
	}
	const { winston, db } = modules;
	let claims;
	let claimed = false;
	try {
		const configured = await readSettings(modules.meta);
		if (!configured.ok) {
			winston.error(`${LOG} back-channel logout refused: ${configured.problem}`);
			refuse(res, 'The forum is not configured for Tessera logout yet.');
			return;
		}
		const { settings } = configured;
		const token = readLogoutToken(req);
		if (token === null) {
			refuse(res, 'The body must be application/x-www-form-urlencoded with one logout_token.');
			return;
		}
		try {
			const keys = await getRemoteKeys(settings.jwksUri);
			claims = await verifyLogoutToken(token, { issuer: settings.issuer, clientId: settings.clientId, keys });
		} catch (error) {
			if (!(error instanceof LogoutTokenError)) throw error;
			winston.warn(`${LOG} logout token refused (${error.code}): ${error.message}`);
			refuse(res, `The logout token is not valid: ${error.message}.`);
			return;
		}
		// Remembered until the token could no longer pass the exp check anyway.
		claimed = await claimJti(db, claims.jti, (claims.exp + CLOCK_TOLERANCE_SECONDS) * 1000);
		if (!claimed) {
			winston.warn(`${LOG} logout token refused (replayed): jti ${claims.jti} was already received`);
			refuse(res, 'The logout token was already received.');
			return;
		}
		const found = await endSessions(modules, settings, claims);
		if (found) {
			winston.info(`${LOG} ended ${found.count} NodeBB session(s) of uid ${found.uid} (Tessera user ${claims.sub}, ${claims.sid ? `session ${claims.sid}` : `all sessions as of ${new Date(claims.revokedAt).toISOString()}`}; mapping: ${found.source})`);
		} else {
			// §2.7: a user already logged out (here: never known) counts as a successful logout.
			winston.verbose(`${LOG} no NodeBB user for Tessera user ${claims.sub || '(none: sid only)'}; nothing to end`);
		}
		send(res, 200);
	} catch (error) {
		winston.error(`${LOG} back-channel logout failed: ${error && error.stack ? error.stack : error}`);
		if (claimed) {
			// Not done: forget the jti so that a retry of this very token is accepted.
			await releaseJti(db, claims.jti).catch(() => {});
		}
		refuse(res, 'The logout could not be completed; retry later.');
	}
}

module.exports = { handleBackchannelLogout, endSessions, readLogoutToken };
