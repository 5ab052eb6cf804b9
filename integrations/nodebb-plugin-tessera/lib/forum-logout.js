'use strict';

/**
 * static:user.loggedOut — a logout at the forum ends the Tessera session too, so that the
 * site and every other app sign out as well (setting `forumLogout`, default `everywhere`), or
 * only the forum's part of it (`forum`: Tessera records that the forum left the session;
 * the other apps stay signed in).
 *
 * NodeBB fires the hook from its logout controller (src/controllers/authentication.js,
 * `authenticationController.logout`) after it destroyed the forum session
 * (`user.auth.revokeSession(sessionID, uid)`, then `req.logout`, `req.session.destroy`), with
 * `{ req, res, uid, sessionID }`; session-sharing's own handler of the same hook clears the
 * shared cookie from the browser (`plugin.cleanup`), but the request still carries it. The
 * forum never holds the Tessera session token; the shared cookie is what it has, and Tessera
 * accepts it from the app named by its `sharedCookie.clientId` for a session that app joined
 * (`POST /api/v1/logout` with the forum's client credentials, docs/api.md).
 *
 * Off the request path: the user's forum logout never waits on Tessera (a few retries with
 * backoff run in the background; a failure is logged). The back-channel logout Tessera then
 * sends to the forum for the same session is harmless: that NodeBB session is already gone.
 *
 * @example
 * // plugin.json: { "hook": "static:user.loggedOut", "method": "endTesseraSessionOnForumLogout" }
 */

const { nodebb } = require('./nodebb');
const { readSettings } = require('./settings');
const { readSharedCookie } = require('./shared-cookie');
const { callTessera } = require('./tessera-api');
const { linkKey, forgetKnownLinks } = require('./local-sessions');

const LOG = '[plugins/tessera]';
const RETRY_DELAYS_MS = [1000, 5000];

/** Sends the logout, retrying network errors and 5xx; resolves with the outcome (for logs and tests). */
async function sendLogout(modules, settings, token, scope, wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref())) {
	const { winston } = modules;
	for (let attempt = 0; ; attempt++) {
		let outcome;
		try {
			outcome = await callTessera(settings, 'POST', '/api/v1/logout', { token, scope });
		} catch (error) {
			outcome = { status: null, code: error && (error.name === 'TimeoutError' ? 'timeout' : error.cause && error.cause.code) };
		}
		if (outcome.status === 200) {
			winston.verbose(`${LOG} forum logout: Tessera ended ${scope === 'app' ? 'the forum\'s part of the session' : 'the session everywhere'}`);
			return outcome;
		}
		const retryable = outcome.status === null || outcome.status >= 500 || outcome.status === 429;
		if (!retryable || attempt >= RETRY_DELAYS_MS.length) {
			winston.error(`${LOG} forum logout: Tessera did not end the session (${outcome.status === null ? outcome.code || 'network error' : `HTTP ${outcome.status}${outcome.code ? ` ${outcome.code}` : ''}`}); the other apps stay signed in`);
			return outcome;
		}
		await wait(RETRY_DELAYS_MS[attempt]);
	}
}

/**
 * The hook. Returns at once; the call to Tessera runs in the background. Returns the
 * background promise's holder for tests (`{ sent }`), or null when there is nothing to send.
 */
async function endTesseraSessionOnForumLogout(data) {
	const modules = nodebb();
	const { winston } = modules;
	try {
		// NodeBB has destroyed that session (user.auth.revokeSession): its link goes with it.
		const sessionId = data && data.sessionID;
		if (typeof sessionId === 'string' && sessionId !== '') {
			await modules.db.delete(linkKey(sessionId));
			forgetKnownLinks([sessionId]);
		}
		const configured = await readSettings(modules.meta);
		if (!configured.ok) return null;
		const { settings } = configured;
		const cookie = await readSharedCookie(modules, data && data.req);
		// Not signed in through Tessera's shared cookie: nothing to end there.
		if (!cookie) return null;
		if (!settings.clientSecret) {
			winston.warn(`${LOG} forum logout: no client secret is set (ACP > Plugins > Tessera), so the Tessera session was not ended; the other apps stay signed in`);
			return null;
		}
		const scope = settings.forumLogout === 'forum' ? 'app' : 'session';
		const sent = sendLogout(modules, settings, cookie.token, scope);
		return { sent };
	} catch (error) {
		// Never fails the forum's own logout.
		winston.error(`${LOG} forum logout: ${error && error.stack ? error.stack : error}`);
		return null;
	}
}

module.exports = { endTesseraSessionOnForumLogout, sendLogout };
