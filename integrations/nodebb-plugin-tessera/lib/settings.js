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
	// logout token forged: http is only tolerated on loopback, for local development.
	if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
		return `${name} must use https (http is only allowed for localhost), not ${JSON.stringify(value)}`;
	}
	return null;
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
	const days = Number.parseInt(text(raw.revocationMemoryDays), 10);
	return {
		ok: true,
		settings: {
			issuer,
			clientId,
			jwksUri,
			sessionSharingName: text(raw.sessionSharingName),
			revocationMemoryMs: (Number.isInteger(days) && days >= 1 && days <= 400 ? days : DEFAULT_MEMORY_DAYS) * 86_400_000,
		},
	};
}

module.exports = { readSettings, SETTINGS_HASH, DEFAULT_MEMORY_DAYS };
