<?php
/**
 * The back-channel logout endpoint, POST /wp-json/tessera/v1/backchannel-logout (OpenID
 * Connect Back-Channel Logout 1.0). Tessera posts a logout token when a session ends; this
 * validates it (§2.6) and ends the WordPress sessions of the Tessera sessions it names,
 * following docs/decisions/0006-late-logouts.md so that a late or retried token never ends a
 * session that began after the revocation.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The endpoint. */
final class Tessera_Backchannel {
	const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
	/** Tokens issued longer ago than this are refused (Tessera signs each attempt afresh). */
	const MAX_AGE = 5 * MINUTE_IN_SECONDS;
	/** Clock tolerance, in seconds. */
	const LEEWAY = 60;

	public static function register(): void {
		add_action( 'rest_api_init', array( self::class, 'route' ) );
	}

	public static function route(): void {
		register_rest_route(
			'tessera/v1',
			'/backchannel-logout',
			array(
				'methods'             => 'POST',
				'callback'            => array( self::class, 'receive' ),
				// Public by design: the caller is authenticated by the logout token's signature,
				// checked in receive(); Tessera sends no WordPress credentials.
				'permission_callback' => '__return_true',
			)
		);
	}

	/**
	 * Handles one delivery: 200 when the logout is done (also when no session was left), 400
	 * with {"error","error_description"} when the token is refused (§2.8), 503 when the keys
	 * cannot be fetched from Tessera (Tessera retries).
	 */
	public static function receive( WP_REST_Request $request ): WP_REST_Response {
		$provider = Tessera_Provider::configured();
		if ( null === $provider ) {
			return self::refuse( 'not_configured', 'The Tessera plugin is not configured.', 503 );
		}
		$type = strtolower( trim( explode( ';', (string) $request->get_header( 'content_type' ) )[0] ) );
		$body = $request->get_body_params();
		if ( 'application/x-www-form-urlencoded' !== $type || ! isset( $body['logout_token'] ) || ! is_string( $body['logout_token'] ) ) {
			return self::refuse( 'malformed', 'Expected a form-encoded logout_token.' );
		}
		try {
			$claims = self::validate( $body['logout_token'], $provider );
		} catch ( Tessera_Token_Error $e ) {
			return 'unavailable' === $e->reason_code ? self::refuse( 'unavailable', $e->getMessage(), 503 ) : self::refuse( $e->reason_code, $e->getMessage() );
		}
		$ended = self::end_sessions( $claims );
		Tessera_Log::write(
			'backchannel.ok',
			sprintf(
				'Tessera user %s%s: ended %d WordPress session(s)',
				$claims['sub'] ?? '?',
				isset( $claims['sid'] ) ? ', session ' . $claims['sid'] : ' (all sessions ended at ' . $claims['revoked_at'] . ')',
				$ended
			)
		);
		$response = new WP_REST_Response( array( 'ended' => $ended ), 200 );
		$response->header( 'Cache-Control', 'no-store' );
		return $response;
	}

	/**
	 * §2.6: signature (with the issuer's keys), iss, aud, iat, exp, the
	 * back-channel event, sid and/or sub, no nonce, a jti never seen before; and Tessera's
	 * `revoked_at` (an integer not later than iat) and `sids` (a list of strings).
	 *
	 * @return array The claims, with revoked_at set (milliseconds).
	 * @throws Tessera_Token_Error When the token is refused.
	 */
	public static function validate( string $token, Tessera_Provider $provider ): array {
		[ $header, $claims ] = Tessera_Jwt::verify( $token, $provider );
		$now                 = time();
		// Explicit typing (§2.4): a token of another kind (an ID token) cannot pass as a logout token.
		if ( isset( $header['typ'] ) && ( ! is_string( $header['typ'] ) || 'logout+jwt' !== strtolower( $header['typ'] ) ) ) {
			throw new Tessera_Token_Error( 'wrong_type', 'typ is not logout+jwt' );
		}
		if ( ( $claims['iss'] ?? null ) !== $provider->issuer() ) {
			throw new Tessera_Token_Error( 'bad_issuer', 'iss is not the configured issuer' );
		}
		$aud = $claims['aud'] ?? null;
		$aud = is_string( $aud ) ? array( $aud ) : ( is_array( $aud ) ? $aud : array() );
		if ( ! in_array( (string) Tessera_Settings::get( 'client_id' ), $aud, true ) ) {
			throw new Tessera_Token_Error( 'bad_audience', 'aud does not name this client' );
		}
		if ( ! is_int( $claims['iat'] ?? null ) || $claims['iat'] > $now + self::LEEWAY || $claims['iat'] < $now - self::MAX_AGE ) {
			throw new Tessera_Token_Error( 'bad_iat', 'iat is missing, in the future or too old' );
		}
		// exp is REQUIRED (Back-Channel Logout 1.0 §2.4 and §2.6 step 4, as corrected by errata
		// set 1): a token without one would be replayable for ever once its jti row is purged.
		// Tessera always sets it (two minutes).
		if ( ! is_int( $claims['exp'] ?? null ) || $claims['exp'] + self::LEEWAY < $now ) {
			throw new Tessera_Token_Error( 'expired', 'exp is missing or past' );
		}
		$events = $claims['events'] ?? null;
		if ( ! is_array( $events ) || ! array_key_exists( self::EVENT, $events ) || ! is_array( $events[ self::EVENT ] ) ) {
			throw new Tessera_Token_Error( 'wrong_type', 'no back-channel logout event' );
		}
		// §2.6 step 5: a nonce makes it an ID token, never a logout token.
		if ( array_key_exists( 'nonce', $claims ) ) {
			throw new Tessera_Token_Error( 'wrong_type', 'a logout token carries no nonce' );
		}
		$has_sid = is_string( $claims['sid'] ?? null ) && '' !== $claims['sid'];
		$has_sub = is_string( $claims['sub'] ?? null ) && '' !== $claims['sub'];
		if ( ( array_key_exists( 'sid', $claims ) && ! $has_sid ) || ( array_key_exists( 'sub', $claims ) && ! $has_sub ) || ( ! $has_sid && ! $has_sub ) ) {
			throw new Tessera_Token_Error( 'malformed', 'sid and/or sub are required (strings)' );
		}
		// Decision 0006: the time of the revocation, the same on every retry. Not an integer, or
		// later than iat: refused (a time in the future would end sessions begun after it).
		if ( array_key_exists( 'revoked_at', $claims ) ) {
			if ( ! is_int( $claims['revoked_at'] ) || $claims['revoked_at'] > ( $claims['iat'] + self::LEEWAY ) * 1000 ) {
				throw new Tessera_Token_Error( 'malformed', 'revoked_at is not an integer time before iat' );
			}
		} else {
			// Not Tessera's: iat is the best there is.
			$claims['revoked_at'] = $claims['iat'] * 1000;
		}
		if ( array_key_exists( 'sids', $claims ) && ( ! is_array( $claims['sids'] ) || ! array_is_list( $claims['sids'] ) || count( $claims['sids'] ) !== count( array_filter( $claims['sids'], 'is_string' ) ) ) ) {
			throw new Tessera_Token_Error( 'malformed', 'sids is not a list of strings' );
		}
		if ( ! is_string( $claims['jti'] ?? null ) || '' === $claims['jti'] || strlen( $claims['jti'] ) > 256 ) {
			throw new Tessera_Token_Error( 'malformed', 'jti is required' );
		}
		// Last, after every other check: only a valid token spends its jti.
		$until = max( $claims['iat'] + self::MAX_AGE, $claims['exp'] ) + self::LEEWAY;
		if ( ! Tessera_Replay::claim( $claims['jti'], $until ) ) {
			throw new Tessera_Token_Error( 'replayed', 'this jti was already received' );
		}
		return $claims;
	}

	/**
	 * Ends the WordPress sessions the token covers (decision 0006):
	 * - with `sid`: the sessions signed in from that Tessera session (of the user `sub` names,
	 *   or, without `sub`, of whichever user has them);
	 * - with only `sub`: the sessions whose Tessera sid is in `sids`; when the token lists none
	 *   or a session has no Tessera sid, those that began at or before `revoked_at`. A session
	 *   that began after the revocation is never ended, however late the token arrives.
	 */
	public static function end_sessions( array $claims ): int {
		if ( ! isset( $claims['sub'] ) ) {
			// Only a sid (§2.4 allows it; Tessera always names sub too): whose sessions these are
			// is found from the sid itself.
			$sid   = (string) $claims['sid'];
			$ended = 0;
			foreach ( Tessera_Sessions::users_with_sid( $sid ) as $user_id ) {
				$ended += Tessera_Sessions::end_where( $user_id, static fn( array $s ): bool => ( $s['tessera_sid'] ?? null ) === $sid );
			}
			return $ended;
		}
		$user = Tessera_Users::by_sub( (string) $claims['sub'] );
		if ( null === $user ) {
			// A user this site has never signed in through Tessera has no session to end.
			return 0;
		}
		if ( isset( $claims['sid'] ) ) {
			$sid = (string) $claims['sid'];
			return Tessera_Sessions::end_where( $user->ID, static fn( array $s ): bool => ( $s['tessera_sid'] ?? null ) === $sid );
		}
		$sids       = isset( $claims['sids'] ) ? $claims['sids'] : null;
		$revoked_at = (int) $claims['revoked_at'];
		return Tessera_Sessions::end_where(
			$user->ID,
			static function ( array $s ) use ( $sids, $revoked_at ): bool {
				if ( null !== $sids && isset( $s['tessera_sid'] ) ) {
					return in_array( $s['tessera_sid'], $sids, true );
				}
				return Tessera_Sessions::started_ms( $s ) <= $revoked_at;
			}
		);
	}

	/** 400 (or another status) with the spec's JSON error; logged. */
	private static function refuse( string $code, string $description, int $status = 400 ): WP_REST_Response {
		Tessera_Log::write( 'backchannel.refused', $code . ': ' . $description );
		$response = new WP_REST_Response(
			array(
				'error'             => 503 === $status ? 'temporarily_unavailable' : 'invalid_request',
				'error_description' => $code . ': ' . $description,
			),
			$status
		);
		$response->header( 'Cache-Control', 'no-store' );
		return $response;
	}
}
