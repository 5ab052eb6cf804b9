import { ERROR_CATALOGUE, describeConfig, type ErrorCode } from '@tessera/core';

// When each code is returned: the documentation half of the error catalogue.
const WHEN: Record<ErrorCode, string> = {
  INVALID_REQUEST: 'A parameter, query or body field fails its schema (wrong type, unknown field, too long), or a combination of fields is not allowed.',
  MALFORMED_BODY: 'The body is not parseable as its content type (broken JSON). An empty body is no body, whatever its content type: routes that take none ignore it, routes that need one answer `INVALID_REQUEST`.',
  INVALID_NAME: 'A username, first or last name, email or app name contains a control character (NUL, newline…), a bidirectional override, isolate or mark (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) or an invisible character (U+200B–U+200D, U+2060, U+FEFF, U+2028, U+2029). Names are stored in Unicode NFC. The same rule on every path that creates or renames a user or an app: admin API, CLI, a trusted app\'s claims. See docs/security.md.',
  RETURN_URL_NOT_ALLOWED: '`return_to` is not exactly one of the registered return URLs (no prefix or wildcard matching).',
  INVALID_GRANT: '`POST /v1/token` with a session or refresh token that is unknown, expired, spent by rotation to another app, or whose session ended or which this app left.',
  UNSUPPORTED_GRANT_TYPE: '`POST /v1/token` with a `grant_type` other than `session_token` or `refresh_token`.',
  REFRESH_TOKEN_REUSED: 'A refresh token was presented a second time. Rotation makes every refresh token single-use, so a second use means it was copied: Tessera ends the whole session (reason `token_theft`).',
  UNAUTHENTICATED: 'No session token, or an unknown, ended or expired one, on a route that needs a session.',
  INVALID_CREDENTIALS: 'Login with a wrong username or password (one code for both, so usernames cannot be probed), or a wrong current password.',
  INVALID_CLIENT: 'HTTP Basic client credentials are missing or wrong. Carries `WWW-Authenticate: Basic`.',
  INVALID_ADMIN_TOKEN: 'An /admin/api call without a valid `Authorization: Bearer <admin token>`.',
  USER_DISABLED: 'The user is disabled (told only after the password was right).',
  APP_NOT_TRUSTED: 'An app that is not `trusted` called `POST /v1/sessions` or `DELETE /api/v1/users/:id/sessions`, or `POST /api/v1/logout` with `scope: user` (the session of the token is still ended; the other sessions of the user are not).',
  CSRF_FAILED: 'A cookie-authenticated state change without the `X-Tessera-CSRF` header, or a login form whose CSRF field does not match its cookie.',
  ORIGIN_NOT_ALLOWED: '`POST /v1/logout` from an origin that no app registered (or with no Origin header).',
  LOGOUT_TOKEN_INVALID: 'A logout token that is unknown, already used or expired.',
  TOKEN_INVALID: 'A session token that Tessera never issued (API and server-to-server logout).',
  FORBIDDEN: 'The caller is authenticated but may not do this.',
  NOT_FOUND: 'No such route.',
  USER_NOT_FOUND: 'No user with this id.',
  APP_NOT_FOUND: 'No app with this client id.',
  SESSION_NOT_FOUND: 'No session with this handle (or, in self-service, not one of yours).',
  DELIVERY_NOT_FOUND: 'An admin retry of a delivery that does not exist or has already been delivered.',
  METHOD_NOT_ALLOWED: 'The route exists but not with this method.',
  USER_CONFLICT: 'Another user already has this id, username or email.',
  APP_CONFLICT: 'Another app already has this client id.',
  REQUEST_TIMEOUT: 'The request line, headers or body did not arrive within the server\'s request timeout.',
  PAYLOAD_TOO_LARGE: 'The body is larger than `bodyLimitBytes`.',
  UNSUPPORTED_MEDIA_TYPE: 'The body has a content type this route does not accept.',
  HEADERS_TOO_LARGE: 'The request line (URL) and headers together exceed Node\'s header size limit (16 KiB by default).',
  RATE_LIMITED: 'Too many FAILED attempts in the window (`rateLimit.*`): sign-ins per address or per account (refused before the password is checked), or logouts, admin tokens or client secrets per address or client id (a right token or secret is never refused). Retry after the `retry-after` seconds.',
  SSF_TOKEN_IN_QUERY: 'An SSF route (stream management, poll, global token revocation) was called with `access_token` in the query string. RFC 6750 §2.3 allows it but URLs end up in logs and referrers, so Tessera refuses it; send `Authorization: Bearer <token>`.',
  SSF_SUBJECT_UNSUPPORTED: 'Add or remove subject, or global token revocation, with a subject identifier whose format Tessera does not resolve (it resolves `iss_sub` with its own issuer, `email`, `opaque` user ids, and `complex` with a `user` member).',
  SSF_INVALID_TOKEN: 'An SSF route without an access token, or with one that is not Tessera\'s (`client_credentials` grant at /oidc/token), expired, or whose client was deleted or lost the `client_credentials` grant. Carries `WWW-Authenticate: Bearer`.',
  SSF_INSUFFICIENT_SCOPE: 'A token with only `ssf.read` on a route that changes a stream (create, update, delete, status update, verification, subjects), or a token without the `global_token_revocation` grant at the global token revocation endpoint.',
  SSF_SET_REFUSED: 'A SET pushed to `POST /ssf/receive/<name>` (Tessera as an SSF receiver) that fails a check: the body carries RFC 8935\'s `err` (`invalid_request`, `invalid_key`, `invalid_issuer`, `invalid_audience`, `authentication_failed`) and `description` beside `error` and `message`. See docs/ssf.md.',
  SSF_UPSTREAM_NOT_FOUND: 'A push to `POST /ssf/receive/<name>` where no `ssf.upstreams` entry has that name.',
  SSF_UPSTREAM_KEYS_UNAVAILABLE: 'A push to `POST /ssf/receive/<name>` while the upstream\'s JWKS (`jwksUri`) could not be fetched (timeout, network, not a key set): the SET may be valid, so the transmitter should retry. Body as for `SSF_SET_REFUSED`.',
  SSF_STREAM_NOT_FOUND: 'A `stream_id` that does not exist, or that belongs to another receiver client (not told apart, so stream ids of others cannot be probed).',
  SSF_EVENT_NOT_FOUND: 'An operator\'s retry (admin API or console) of a SET that is not a dead SET of that stream: unknown, of another stream, pending or delivered.',
  SSF_STREAM_DISABLED: 'An operator\'s retry of a SET of a disabled stream: a disabled stream sends nothing; enable it first.',
  SSF_STREAM_LIMIT: 'Creating a stream when the receiver client already holds `ssf.maxStreamsPerClient` streams (SSF §8.1.1.1 answers 409 when a transmitter does not support more streams).',
  SSF_VERIFICATION_TOO_SOON: 'A verification request sooner than the stream\'s `min_verification_interval` seconds after the previous one (SSF §8.1.4.2). Carries `Retry-After`.',
  INTERNAL: 'An unexpected failure; details are in the server log, never in the response.',
  UNAVAILABLE: 'A dependency (the database) is unreachable.',
};

/** docs/errors.md, rendered from the error catalogue. */
export function renderErrorsDoc(): string {
  const rows = (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => `| \`${code}\` | ${ERROR_CATALOGUE[code].status} | ${ERROR_CATALOGUE[code].message} | ${WHEN[code]} |`);
  return `# Errors

<!-- Generated from packages/core/src/errors.ts by \`node scripts/gen-docs.mjs\`; a test fails when it is out of date. -->

Every error response has the same JSON shape, whatever the route:

\`\`\`json
{ "error": "SESSION_NOT_FOUND", "message": "No such session." }
\`\`\`

\`error\` is a stable code from the closed list below: program against it, not against the
message. Messages of 4xx errors are safe to show; 5xx responses never carry details or stack
traces (those go to the server log). The hosted login page answers with HTML pages instead,
with the same status codes.

| code | status | message | when |
|---|---|---|---|
${rows.join('\n')}

## The OpenID Provider's endpoints

The OAuth and OpenID Connect endpoints (\`/oidc/token\`, \`/oidc/userinfo\`; see
[oidc.md](oidc.md)) answer with the error codes their specifications name, because relying
parties switch on those: \`{"error": "invalid_grant", "error_description": "…", "message": "…"}\`
(the \`message\` member repeats the description, as in every other error body).

| endpoint | status | \`error\` | when |
|---|---|---|---|
| token | 400 | \`invalid_request\` | a parameter is missing or repeated, or two client authentication methods are used |
| token | 401 | \`invalid_client\` | client authentication failed (wrong secret, unknown client, a public client sending a secret, a confidential one without); carries \`WWW-Authenticate: Basic\` |
| token | 400 | \`invalid_grant\` | the code is unknown, expired, issued to another client, already used (its grant is then revoked), the redirect_uri or PKCE verifier does not match; the refresh token is unknown, spent (the session is then ended) or its session ended |
| token | 400 | \`unauthorized_client\` | the client did not register this grant type |
| token | 400 | \`unsupported_grant_type\` | a grant type other than \`authorization_code\` or \`refresh_token\` |
| userinfo | 401 | \`invalid_token\` | no access token, or one that is invalid, expired, or whose session ended; in \`WWW-Authenticate: Bearer\` |
| userinfo | 403 | \`insufficient_scope\` | the access token was not issued for \`openid\` |

The authorization endpoint sends its errors to the client's redirect URI (\`error\`,
\`error_description\`, \`state\`, \`iss\`): \`invalid_request\`, \`unsupported_response_type\`,
\`invalid_scope\`, \`unauthorized_client\`, \`login_required\`, \`consent_required\`,
\`access_denied\`, \`request_not_supported\`, \`request_uri_not_supported\` — but only once
the client and the redirect URI are verified. Before that (unknown client, unregistered or
missing redirect_uri), and at the end-session endpoint for any bad request, the browser gets
a Tessera error page (400) and is never redirected.
`;
}

/** docs/configuration.md, rendered from the configuration schema. */
export function renderConfigurationDoc(): string {
  const rows = describeConfig().map((r) => `| \`${r.key}\` | ${r.env ? `\`${r.env}\`` : ''} | \`${JSON.stringify(r.default ?? null)}\` | ${r.description} |`);
  return `# Configuration

<!-- Generated from packages/core/src/config.ts by \`node scripts/gen-docs.mjs\`; a test fails when it is out of date. -->

Tessera reads one configuration at boot, validates it, and freezes it:

1. the JSON file named by \`TESSERA_CONFIG\` (or \`tessera start --config FILE\`), if any;
2. then the environment variables below, which win over the file.

A bad value stops the start with an error naming the key, e.g.
\`Invalid configuration port (TESSERA_PORT): must be <= 65535\`. Unknown keys in the file
are errors too (a typo in a security setting must not pass silently).

Example file:

\`\`\`json
{
  "issuer": "https://auth.example.com",
  "cookie": { "domain": ".example.com" },
  "session": { "idleTimeoutSeconds": 86400, "absoluteLifetimeSeconds": 2592000 },
  "allowedReturnUrls": ["https://www.example.com/"]
}
\`\`\`

| key | environment | default | meaning |
|---|---|---|---|
${rows.join('\n')}

Notes:

- \`cookie.secure=false\` (\`TESSERA_COOKIE_SECURE=false\`) is accepted only when the issuer
  is a loopback \`http://\` URL, and Tessera logs a warning at start. \`npm start\` sets it for
  you on a fresh local checkout.
- \`TESSERA_DATABASE_URL=postgres://…\` switches from the embedded SQLite file
  (\`<dataDir>/tessera.db\`) to PostgreSQL; the schema is migrated on start.
- \`rateLimit.*\` counts FAILED attempts only, keyed by client address (\`request.ip\`: the
  socket's address, or the \`X-Forwarded-For\` address with \`trustProxy\`; see
  [deployment.md §6](deployment.md#6-load-balancer-tls-and-client-addresses)), by account name
  (sign-ins) and by client id (client secrets). A valid logout, admin token or client secret
  is never refused; sign-ins are refused before the password check while their address or
  account is over its limit. Counts are per node, in memory. See
  [security.md](security.md#failed-attempts-and-malformed-input).
- Without \`TESSERA_ADMIN_TOKEN\` and with no admin token stored yet, the first start creates
  one and prints it once; \`tessera admin-token create\` makes more.
`;
}
