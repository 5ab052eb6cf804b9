'use strict';

/**
 * Calls to Tessera's app API with the forum's client credentials (HTTP Basic, each part
 * form-encoded as RFC 6749 §2.3.1 asks). Used off the request path only: the forum's own
 * answers never wait on Tessera.
 *
 * @example
 * const { status } = await callTessera(settings, 'POST', '/api/v1/logout', { token, scope: 'session' });
 */

const TIMEOUT_MS = 5000;

function basic(clientId, clientSecret) {
	return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/** One request; resolves with `{ status }`, or rejects on a network error or timeout. */
async function callTessera(settings, method, path, body) {
	const response = await fetch(`${settings.issuer}${path}`, {
		method,
		headers: {
			authorization: basic(settings.clientId, settings.clientSecret),
			...(body === undefined ? {} : { 'content-type': 'application/json' }),
		},
		...(body === undefined ? {} : { body: JSON.stringify(body) }),
		redirect: 'manual',
		signal: AbortSignal.timeout(TIMEOUT_MS),
	});
	// The body is not needed (200/204 are empty; errors are logged by status and code).
	const text = await response.text().catch(() => '');
	let code;
	try {
		code = JSON.parse(text).error;
	} catch {
		code = undefined;
	}
	return { status: response.status, code };
}

module.exports = { callTessera };
