'use strict';

/**
 * Reads the plugin's settings (ACP > Plugins > Tessera, stored by NodeBB in the hash
 * `settings:tessera`) and checks them. NodeBB caches `meta.settings.get`, so reading them on
 * every request costs nothing and a change in the ACP applies without a restart.
 *
 * @example
 * const result = await readSettings(meta);
 * if (!result.ok) winston.error(`[tessera] ${result.problem}`);
 */

const SETTINGS_HASH = 'tessera';
const DEFAULT_MEMORY_DAYS = 30;
const DEFAULT_ACTIVITY_MINUTES = 5;
const DEFAULT_OAUTH2_STRATEGY = 'tessera';
/** What a logout at the forum ends: the Tessera session in every app, or only the forum's part. */
const FORUM_LOGOUT = new Set(['everywhere', 'forum']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function text(value) {
	return typeof value === 'string' ? value.trim() : '';
}

function checkUrl(value, name) {
	let url;
	try {
		url = new URL(value);
	} catch {
		return `${name} must be an absolute URL, not ${JSON.stringify(value)}`;
	}
	// Keys fetched over plain http could be swapped by anyone on the path, and with them any
	// logout token forged (and the client secret would travel in clear): http is only
	// tolerated on loopback, for local development.
	if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
		return `${name} must use https (http is only allowed for localhost), not ${JSON.stringify(value)}`;
	}
	return null;
}

function integerIn(raw, min, max, fallback) {
	const value = Number.parseInt(text(raw), 10);
	return Number.isInteger(value) && value >= min && value <= max ? value : fallback;
}

async function readSettings(meta) {
	const raw = (await meta.settings.get(SETTINGS_HASH)) || {};
	// Tessera publishes its issuer without a trailing slash; the iss claim must match exactly.
	const issuer = text(raw.issuer).replace(/\/+$/, '');
	const clientId = text(raw.clientId);
	if (!issuer) return { ok: false, problem: 'the Tessera issuer URL is not set (ACP > Plugins > Tessera)' };
	if (!clientId) return { ok: false, problem: 'the Tessera client id is not set (ACP > Plugins > Tessera)' };
	const issuerProblem = checkUrl(issuer, 'issuer');
	if (issuerProblem) return { ok: false, problem: issuerProblem };
	const jwksUri = text(raw.jwksUri) || `${issuer}/.well-known/jwks.json`;
	const jwksProblem = checkUrl(jwksUri, 'jwksUri');
	if (jwksProblem) return { ok: false, problem: jwksProblem };
	const forumLogout = text(raw.forumLogout);
	return {
		ok: true,
		settings: {
			issuer,
			clientId,
			jwksUri,
			// Only needed to call Tessera (forum logout, activity); receiving logouts works without.
			clientSecret: text(raw.clientSecret),
			forumLogout: FORUM_LOGOUT.has(forumLogout) ? forumLogout : 'everywhere',
			// 0 turns activity reports off.
			activityMs: integerIn(raw.activityMinutes, 0, 1440, DEFAULT_ACTIVITY_MINUTES) * 60_000,
			sessionSharingName: text(raw.sessionSharingName),
			// sso-oauth2-multiple's strategy that signs in through Tessera (its mapping
			// `<name>Id:uid`); the plugin slugifies names, so only [a-z0-9-] can match.
			oauth2Strategy: /^[a-z0-9-]{1,64}$/.test(text(raw.oauth2Strategy) || DEFAULT_OAUTH2_STRATEGY) ? text(raw.oauth2Strategy) || DEFAULT_OAUTH2_STRATEGY : '',
			revocationMemoryMs: integerIn(raw.revocationMemoryDays, 1, 400, DEFAULT_MEMORY_DAYS) * 86_400_000,
		},
	};
}

module.exports = { readSettings, SETTINGS_HASH, DEFAULT_MEMORY_DAYS, DEFAULT_ACTIVITY_MINUTES };
