'use strict';

/**
 * Verification of an OpenID Connect Back-Channel Logout 1.0 logout token, as §2.6 of the
 * spec asks of a relying party. jose (ESM only) is loaded with a dynamic import, which works
 * from this CommonJS plugin on every Node.js version NodeBB 4 runs on.
 *
 * @example
 * const keys = await getRemoteKeys('https://auth.example.com/.well-known/jwks.json');
 * const claims = await verifyLogoutToken(token, { issuer, clientId, keys });
 * // claims.sub, claims.sid, claims.jti, claims.exp, claims.revokedAt (ms), claims.sids
 */

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// Only the asymmetric algorithms Tessera signs with (EdDSA by default; an app that is also an
// OpenID Connect client gets its `id_token_signed_response_alg`, RS256 unless set — the case
// of a forum signing users in with sso-oauth2-multiple, seen on the real forum). Listing them,
// instead of trusting the header, is what refuses `alg: none` and HS256 signed with the
// public key; jose also checks that the key's type fits the algorithm.
const ALLOWED_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'];
// Leeway for clock drift between Tessera and the forum.
const CLOCK_TOLERANCE_SECONDS = 30;
// Tessera's logout tokens live 2 minutes; one issued longer ago than this is refused.
const MAX_TOKEN_AGE_SECONDS = 300;
// Tessera's tokens are well under 1 KB; the bound keeps hostile input cheap to refuse.
const MAX_TOKEN_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;
// Tessera lists at most 100 ended sessions; the bound keeps a hostile list cheap.
const MAX_SIDS = 1000;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

let josePromise;
function loadJose() {
	if (!josePromise) josePromise = import('jose');
	return josePromise;
}

const remoteKeySets = new Map();

/**
 * The issuer's key set, fetched on first use and cached by jose (refetched when a token
 * names an unknown `kid`, so key rotation needs no restart). One per URL.
 */
async function getRemoteKeys(jwksUri) {
	let keys = remoteKeySets.get(jwksUri);
	if (!keys) {
		const { createRemoteJWKSet } = await loadJose();
		keys = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
		remoteKeySets.set(jwksUri, keys);
	}
	return keys;
}

/** Why a logout token was refused; `code` is for logs, the answer is always 400 invalid_request. */
class LogoutTokenError extends Error {
	constructor(code, message, options) {
		super(message, options);
		this.name = 'LogoutTokenError';
		this.code = code;
	}
}

function normalizeTyp(value) {
	const lower = String(value).toLowerCase();
	return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

function isPlainObject(value) {
	return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function fromJoseError(errors, error) {
	if (error instanceof errors.JWTExpired) return new LogoutTokenError('expired', 'the logout token has expired', { cause: error });
	if (error instanceof errors.JWTClaimValidationFailed) {
		const claim = error.claim;
		if (error.reason === 'missing') return new LogoutTokenError('claim_missing', `the logout token lacks the ${claim} claim`, { cause: error });
		if (claim === 'iss') return new LogoutTokenError('wrong_issuer', 'the logout token comes from another issuer', { cause: error });
		if (claim === 'aud') return new LogoutTokenError('wrong_audience', 'the logout token is meant for another client', { cause: error });
		if (claim === 'typ') return new LogoutTokenError('wrong_type', 'the token is not a logout token (typ)', { cause: error });
		if (claim === 'iat' || claim === 'nbf') return new LogoutTokenError('not_yet_valid', `the ${claim} claim is in the future`, { cause: error });
		return new LogoutTokenError('claim_invalid', `the ${claim} claim is invalid`, { cause: error });
	}
	if (error instanceof errors.JWSSignatureVerificationFailed) return new LogoutTokenError('bad_signature', 'the signature does not verify', { cause: error });
	if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
		return new LogoutTokenError('unknown_key', 'the token is signed with a key the issuer does not publish', { cause: error });
	}
	if (error instanceof errors.JOSEAlgNotAllowed) return new LogoutTokenError('alg_not_allowed', 'the signing algorithm is not allowed', { cause: error });
	if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid) {
		return new LogoutTokenError('malformed', 'the logout token is malformed', { cause: error });
	}
	// What remains comes from fetching the key set (timeout, non-200, network): the token may
	// be fine, the forum just cannot check it now. Tessera retries on the 400.
	return new LogoutTokenError('keys_unavailable', 'the issuer\'s keys could not be fetched', { cause: error });
}

/**
 * Verifies a logout token and returns its claims, or throws a LogoutTokenError. Checks, in
 * order: size and shape; `alg` in EdDSA/ES256/RS256; header `typ: logout+jwt`; the signature
 * against the issuer's keys; `iss`; `aud` contains the client id; `iat` (not in the future,
 * not older than 5 minutes) and `exp` with 30 s of leeway; `events` holds the back-channel
 * logout event as an object; `sub` and/or `sid`; no `nonce`; a `jti`; Tessera's `revoked_at`
 * (an integer of ms, not after `iat`) and `sids` (strings) when present. Adds `revokedAt`
 * (`revoked_at`, or `iat` × 1000) and `sids`.
 *
 * @example
 * try { claims = await verifyLogoutToken(token, { issuer, clientId, keys }); }
 * catch (error) { if (error.code) return refuse(error.message); throw error; }
 */
async function verifyLogoutToken(token, { issuer, clientId, keys, now = Date.now() }) {
	if (typeof token !== 'string' || token.length === 0) throw new LogoutTokenError('missing', 'no logout_token');
	if (token.length > MAX_TOKEN_LENGTH) throw new LogoutTokenError('too_large', 'the logout token is too large');
	if (!COMPACT_JWS.test(token)) throw new LogoutTokenError('malformed', 'the logout token is not a signed JWT');
	const jose = await loadJose();
	let header;
	try {
		header = jose.decodeProtectedHeader(token);
	} catch (error) {
		throw new LogoutTokenError('malformed', 'the logout token header cannot be read', { cause: error });
	}
	if (typeof header.alg !== 'string' || !ALLOWED_ALGORITHMS.includes(header.alg)) {
		throw new LogoutTokenError('alg_not_allowed', `the algorithm ${JSON.stringify(String(header.alg)).slice(0, 40)} is not allowed`);
	}
	// Checked before the signature too: an ID token or access token from the same issuer has a
	// valid signature and must still never pass as a logout token (spec §2.4, typ).
	if (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== 'logout+jwt') {
		throw new LogoutTokenError('wrong_type', 'the token is not a logout token (typ must be logout+jwt)');
	}
	let claims;
	try {
		({ payload: claims } = await jose.jwtVerify(token, keys, {
			issuer,
			audience: clientId,
			algorithms: ALLOWED_ALGORITHMS,
			typ: 'logout+jwt',
			clockTolerance: CLOCK_TOLERANCE_SECONDS,
			maxTokenAge: MAX_TOKEN_AGE_SECONDS,
			currentDate: new Date(now),
			requiredClaims: ['iat', 'exp', 'jti', 'events'],
		}));
	} catch (error) {
		throw fromJoseError(jose.errors, error);
	}
	if (!isPlainObject(claims.events) || !isPlainObject(claims.events[BACKCHANNEL_LOGOUT_EVENT])) {
		throw new LogoutTokenError('no_logout_event', 'the events claim lacks the back-channel logout event');
	}
	const sub = typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
	const sid = typeof claims.sid === 'string' && claims.sid !== '' ? claims.sid : undefined;
	if (sub === undefined && sid === undefined) throw new LogoutTokenError('no_subject', 'the logout token names neither sub nor sid');
	// A nonce would make it an ID token; refusing it keeps ID tokens from passing as logout tokens.
	if (Object.prototype.hasOwnProperty.call(claims, 'nonce')) throw new LogoutTokenError('nonce_present', 'a logout token must not contain a nonce');
	if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > MAX_JTI_LENGTH) {
		throw new LogoutTokenError('claim_invalid', 'the jti claim is invalid');
	}
	// Tessera's claims of the revocation itself, the same on every retried attempt (unlike
	// iat, the signing time): revoked_at (ms) and, on a user-wide token, sids — what the
	// revocation ended (docs/decisions/0006-late-logouts.md). Tokens of other issuers lack
	// them; iat stands in. A revoked_at after the token was signed is refused: a time in the
	// future would end sessions begun after the real revocation.
	let revokedAt = claims.iat * 1000;
	if (claims.revoked_at !== undefined) {
		const at = claims.revoked_at;
		if (!Number.isSafeInteger(at) || at <= 0 || at > (claims.iat + CLOCK_TOLERANCE_SECONDS) * 1000) {
			throw new LogoutTokenError('claim_invalid', 'the revoked_at claim is invalid');
		}
		revokedAt = at;
	}
	let sids;
	if (claims.sids !== undefined) {
		if (!Array.isArray(claims.sids) || claims.sids.length > MAX_SIDS || !claims.sids.every((x) => typeof x === 'string' && x !== '' && x.length <= 256)) {
			throw new LogoutTokenError('claim_invalid', 'the sids claim is invalid');
		}
		sids = claims.sids;
	}
	return { ...claims, sub, sid, revokedAt, sids };
}

module.exports = {
	verifyLogoutToken,
	getRemoteKeys,
	LogoutTokenError,
	BACKCHANNEL_LOGOUT_EVENT,
	ALLOWED_ALGORITHMS,
	CLOCK_TOLERANCE_SECONDS,
	loadJose,
};
