'use strict';

/**
 * Tessera's shared parent-domain cookie, as nodebb-plugin-session-sharing reads it: its name,
 * parent key and id claim come from session-sharing's settings (`settings:session-sharing`:
 * `cookieName`, default `token`; `payloadParent`; `payload:id`, default `id`, in
 * julianlam/nodebb-plugin-session-sharing library.js). Tessera puts `sid` (its session
 * handle) and `iat` at the top level of the payload.
 *
 * @example
 * const cookie = await readSharedCookie(nodebb(), req, { verify: true });
 * // { token, sid: 'ses_…', iat: 1767225600, id: 'usr_…' } or null
 */

const { loadJose } = require('./logout-token');

async function sessionSharingSettings(meta) {
	const sharing = (await meta.settings.get('session-sharing')) || {};
	const pick = (value, fallback) => (typeof value === 'string' && value.trim() ? value.trim() : fallback);
	return {
		cookieName: pick(sharing.cookieName, 'token'),
		parent: pick(sharing.payloadParent, pick(sharing['payload:parent'], undefined)),
		idClaim: pick(sharing['payload:id'], 'id'),
		secret: typeof sharing.secret === 'string' ? sharing.secret : '',
	};
}

function claimOf(payload, parent, name) {
	if (payload[name] !== undefined) return payload[name];
	const nested = parent && payload[parent];
	return nested && typeof nested === 'object' ? nested[name] : undefined;
}

/**
 * The shared cookie of a request, decoded; null when there is none or it cannot be read.
 * With `verify`, its HS256 signature (session-sharing's secret) and `exp` are checked too —
 * for uses where session-sharing has not just checked this very cookie.
 */
async function readSharedCookie({ meta }, req, { verify = false } = {}) {
	const sharing = await sessionSharingSettings(meta);
	const token = req && req.cookies && req.cookies[sharing.cookieName];
	if (typeof token !== 'string' || token === '' || token.length > 8192) return null;
	const jose = await loadJose();
	let payload;
	try {
		if (verify) {
			if (!sharing.secret) return null;
			({ payload } = await jose.jwtVerify(token, new TextEncoder().encode(sharing.secret), { algorithms: ['HS256'] }));
		} else {
			payload = jose.decodeJwt(token);
		}
	} catch {
		return null;
	}
	const sid = claimOf(payload, sharing.parent, 'sid');
	const iat = claimOf(payload, sharing.parent, 'iat');
	const id = claimOf(payload, sharing.parent, sharing.idClaim);
	return {
		token,
		sid: typeof sid === 'string' && sid !== '' ? sid : undefined,
		iat: typeof iat === 'number' ? iat : undefined,
		id: typeof id === 'string' || typeof id === 'number' ? String(id) : undefined,
		payload,
	};
}

module.exports = { readSharedCookie, sessionSharingSettings, claimOf };
