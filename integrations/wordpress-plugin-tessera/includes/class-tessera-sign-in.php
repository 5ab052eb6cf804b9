<?php
/**
 * Sign-in through Tessera: OpenID Connect authorization code flow with PKCE (S256), state
 * and nonce, at wp-login.php?action=tessera_login and ?action=tessera_callback.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The sign-in flow. */
final class Tessera_Sign_In {
	const STATE_COOKIE = 'tessera_oidc_state';
	const STATE_TTL    = 10 * MINUTE_IN_SECONDS;
	/** Clock tolerance for iat/exp, in seconds. */
	const LEEWAY = 60;

	public static function register(): void {
		add_action( 'login_form', array( self::class, 'button' ) );
		add_action( 'login_enqueue_scripts', array( self::class, 'style' ) );
		add_action( 'login_form_tessera_login', array( self::class, 'start' ) );
		add_action( 'login_form_tessera_callback', array( self::class, 'callback' ) );
	}

	/** The button's layout, added to the login page's own stylesheet. */
	public static function style(): void {
		wp_add_inline_style( 'login', '.tessera-sign-in{margin-bottom:16px}.tessera-sign-in .button{width:100%;text-align:center}' );
	}

	/** The button on the login form. */
	public static function button(): void {
		if ( ! Tessera_Settings::is_configured() ) {
			return;
		}
		$args = array( 'action' => 'tessera_login' );
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only: where to go after sign-in, validated at the end.
		if ( isset( $_REQUEST['redirect_to'] ) && is_string( $_REQUEST['redirect_to'] ) ) {
			$args['redirect_to'] = rawurlencode( wp_unslash( $_REQUEST['redirect_to'] ) ); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized,WordPress.Security.NonceVerification.Recommended
		}
		printf(
			'<p class="tessera-sign-in"><a class="button button-secondary button-large" href="%s">%s</a></p>',
			esc_url( add_query_arg( $args, wp_login_url() ) ),
			esc_html( (string) Tessera_Settings::get( 'button_label' ) )
		);
	}

	/** Starts a sign-in: a fresh state, nonce and PKCE verifier, then off to Tessera. */
	public static function start(): void {
		$provider = Tessera_Provider::configured();
		$endpoint = $provider ? $provider->endpoint( 'authorization_endpoint' ) : null;
		if ( null === $endpoint ) {
			self::fail( 'signin.unavailable', 'Tessera is not configured or cannot be reached.', __( 'Sign-in through Tessera is not available right now.', 'tessera' ), 503 );
		}
		$state    = Tessera_Jwt::b64url_encode( random_bytes( 32 ) );
		$nonce    = Tessera_Jwt::b64url_encode( random_bytes( 32 ) );
		$verifier = Tessera_Jwt::b64url_encode( random_bytes( 32 ) );
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- validated by wp_validate_redirect when used.
		$redirect = isset( $_GET['redirect_to'] ) && is_string( $_GET['redirect_to'] ) ? esc_url_raw( wp_unslash( $_GET['redirect_to'] ) ) : '';
		// The state's secrets live on the server, keyed by a hash of the state; the browser
		// holds the state in a cookie, so a callback only completes in the browser that
		// started it (no login CSRF: an attacker's code cannot be planted in a victim's browser).
		set_transient( self::state_key( $state ), array( 'nonce' => $nonce, 'verifier' => $verifier, 'redirect_to' => $redirect ), self::STATE_TTL );
		self::state_cookie( $state, time() + self::STATE_TTL );
		$url = add_query_arg(
			array_map(
				'rawurlencode',
				array(
					'response_type'         => 'code',
					'client_id'             => (string) Tessera_Settings::get( 'client_id' ),
					'redirect_uri'          => Tessera_Settings::redirect_uri(),
					'scope'                 => 'openid profile email',
					'state'                 => $state,
					'nonce'                 => $nonce,
					'code_challenge'        => Tessera_Jwt::b64url_encode( hash( 'sha256', $verifier, true ) ),
					'code_challenge_method' => 'S256',
				)
			),
			$endpoint
		);
		// wp_redirect, not wp_safe_redirect: the authorization endpoint is on Tessera's host,
		// which came from the administrator's settings (through discovery of that issuer).
		wp_redirect( $url ); // phpcs:ignore WordPress.Security.SafeRedirect.wp_redirect_wp_redirect
		exit;
	}

	/** The way back from Tessera: checks state, redeems the code, validates the ID token, signs in. */
	public static function callback(): void {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- the OAuth state is this request's CSRF check.
		$state  = isset( $_GET['state'] ) && is_string( $_GET['state'] ) ? sanitize_text_field( wp_unslash( $_GET['state'] ) ) : '';
		$cookie = isset( $_COOKIE[ self::STATE_COOKIE ] ) && is_string( $_COOKIE[ self::STATE_COOKIE ] ) ? sanitize_text_field( wp_unslash( $_COOKIE[ self::STATE_COOKIE ] ) ) : '';
		self::state_cookie( '', time() - YEAR_IN_SECONDS );
		// Constant-time comparison: the state is a secret of this browser.
		if ( '' === $state || '' === $cookie || ! hash_equals( $cookie, $state ) ) {
			self::fail( 'signin.refused', 'state does not match this browser', __( 'This sign-in was not started in this browser, or it took too long. Please try again.', 'tessera' ) );
		}
		$pending = get_transient( self::state_key( $state ) );
		// One use: a state (and its code verifier) is spent whatever happens next.
		delete_transient( self::state_key( $state ) );
		if ( ! is_array( $pending ) ) {
			self::fail( 'signin.refused', 'unknown or expired state', __( 'This sign-in expired. Please try again.', 'tessera' ) );
		}
		$provider = Tessera_Provider::configured();
		if ( null === $provider ) {
			self::fail( 'signin.unavailable', 'Tessera is not configured', __( 'Sign-in through Tessera is not available right now.', 'tessera' ), 503 );
		}
		// RFC 9207: the authorization response names its issuer; a response from another
		// issuer (a mix-up attack) is refused.
		if ( isset( $_GET['iss'] ) && ( ! is_string( $_GET['iss'] ) || wp_unslash( $_GET['iss'] ) !== $provider->issuer() ) ) {
			self::fail( 'signin.refused', 'the authorization response names another issuer', __( 'The sign-in answer came from an unexpected server.', 'tessera' ) );
		}
		if ( isset( $_GET['error'] ) ) {
			// A string from Tessera; anything else (`error[]=…`) is not cast (a PHP warning).
			$error = is_string( $_GET['error'] ) ? sanitize_key( wp_unslash( $_GET['error'] ) ) : 'invalid_request';
			self::fail( 'signin.denied', 'Tessera answered ' . $error, 'access_denied' === $error ? __( 'The sign-in was cancelled.', 'tessera' ) : __( 'Tessera could not sign you in.', 'tessera' ) );
		}
		$code = isset( $_GET['code'] ) && is_string( $_GET['code'] ) ? wp_unslash( $_GET['code'] ) : '';
		// phpcs:enable
		if ( '' === $code || strlen( $code ) > 512 ) {
			self::fail( 'signin.refused', 'no authorization code', __( 'Tessera could not sign you in.', 'tessera' ) );
		}
		$token_endpoint = $provider->endpoint( 'token_endpoint' );
		[ $status, $body ] = Tessera_Http::request(
			'POST',
			(string) $token_endpoint,
			array(
				'headers' => array( 'authorization' => Tessera_Http::basic_auth(), 'accept' => 'application/json' ),
				'body'    => array(
					'grant_type'    => 'authorization_code',
					'code'          => $code,
					'redirect_uri'  => Tessera_Settings::redirect_uri(),
					'code_verifier' => $pending['verifier'],
				),
			)
		);
		$tokens = json_decode( $body, true );
		if ( 200 !== $status || ! is_array( $tokens ) || ! is_string( $tokens['id_token'] ?? null ) ) {
			$why = is_array( $tokens ) && is_string( $tokens['error'] ?? null ) ? $tokens['error'] : ( 0 === $status ? $body : 'HTTP ' . $status );
			self::fail( 'signin.token_failed', 'the token endpoint answered ' . $why, __( 'Tessera could not sign you in.', 'tessera' ) );
		}
		try {
			$claims = self::validate_id_token( $tokens['id_token'], $provider, $pending['nonce'] );
		} catch ( Tessera_Token_Error $e ) {
			if ( 'unavailable' === $e->reason_code ) {
				// Tessera's keys could not be fetched: the token was not refused, the server is unreachable.
				self::fail( 'signin.unavailable', $e->getMessage(), __( 'Sign-in through Tessera is not available right now.', 'tessera' ), 503 );
			}
			self::fail( 'signin.id_token_refused', $e->reason_code . ': ' . $e->getMessage(), __( 'Tessera could not sign you in.', 'tessera' ) );
		}
		$user = Tessera_Users::resolve( $claims );
		if ( is_wp_error( $user ) ) {
			self::fail( 'signin.no_user', $user->get_error_code() . ' for Tessera user ' . $claims['sub'], $user->get_error_message(), 403 );
		}

		Tessera_Sessions::set_login_context( $user->ID, (string) $claims['sub'], (string) $claims['sid'], $tokens['id_token'] );
		wp_set_auth_cookie( $user->ID, false, is_ssl() );
		Tessera_Sessions::clear_login_context();
		wp_set_current_user( $user->ID );
		Tessera_Shared_Cookie::set( $user, $claims );
		/** This action is documented in wp-includes/user.php (wp_signon). */
		do_action( 'wp_login', $user->user_login, $user );
		Tessera_Log::write( 'signin.ok', sprintf( 'user %d signed in; Tessera user %s, session %s', $user->ID, $claims['sub'], $claims['sid'] ) );

		// As wp-login.php does after a password sign-in: the requested place (or the dashboard),
		// through the 'login_redirect' filter other plugins rely on; then only a URL on this
		// site (or a host allowed by 'allowed_redirect_hosts') is followed, never one that
		// came in a link (no open redirect).
		$requested = (string) $pending['redirect_to'];
		/** This filter is documented in wp-login.php. */
		$target = apply_filters( 'login_redirect', '' === $requested ? admin_url() : $requested, $requested, $user );
		$target = wp_validate_redirect( is_string( $target ) ? $target : '', admin_url() );
		wp_safe_redirect( '' === $target ? admin_url() : $target );
		exit;
	}

	/**
	 * Validates an ID token (OIDC Core §3.1.3.7): signature with the issuer's keys, iss,
	 * aud, azp, exp, iat, nonce, and the claims this plugin needs (sub, sid).
	 *
	 * @return array The claims.
	 * @throws Tessera_Token_Error When any check fails.
	 */
	public static function validate_id_token( string $id_token, Tessera_Provider $provider, string $nonce ): array {
		[ , $claims ] = Tessera_Jwt::verify( $id_token, $provider );
		$client_id    = (string) Tessera_Settings::get( 'client_id' );
		$now          = time();
		if ( ( $claims['iss'] ?? null ) !== $provider->issuer() ) {
			throw new Tessera_Token_Error( 'bad_issuer', 'iss is not the configured issuer' );
		}
		$aud = $claims['aud'] ?? null;
		$aud = is_string( $aud ) ? array( $aud ) : ( is_array( $aud ) ? $aud : array() );
		if ( ! in_array( $client_id, $aud, true ) ) {
			throw new Tessera_Token_Error( 'bad_audience', 'aud does not name this client' );
		}
		// §3.1.3.7 items 4-5: with several audiences azp is required, and when present it must be us.
		if ( ( count( $aud ) > 1 || isset( $claims['azp'] ) ) && ( $claims['azp'] ?? null ) !== $client_id ) {
			throw new Tessera_Token_Error( 'bad_audience', 'azp is not this client' );
		}
		if ( ! is_int( $claims['exp'] ?? null ) || $claims['exp'] + self::LEEWAY < $now ) {
			throw new Tessera_Token_Error( 'expired', 'exp is missing or past' );
		}
		if ( ! is_int( $claims['iat'] ?? null ) || $claims['iat'] > $now + self::LEEWAY || $claims['iat'] < $now - HOUR_IN_SECONDS ) {
			throw new Tessera_Token_Error( 'bad_iat', 'iat is missing, in the future or too old' );
		}
		// The nonce binds the token to this browser's sign-in (no token injection).
		if ( ! is_string( $claims['nonce'] ?? null ) || ! hash_equals( $nonce, $claims['nonce'] ) ) {
			throw new Tessera_Token_Error( 'bad_nonce', 'nonce does not match the sign-in' );
		}
		if ( ! is_string( $claims['sub'] ?? null ) || '' === $claims['sub'] || ! is_string( $claims['sid'] ?? null ) || '' === $claims['sid'] ) {
			throw new Tessera_Token_Error( 'malformed', 'sub or sid missing' );
		}
		return $claims;
	}

	private static function state_key( string $state ): string {
		return 'tessera_state_' . substr( hash( 'sha256', $state ), 0, 40 );
	}

	private static function state_cookie( string $value, int $expires ): void {
		setcookie(
			self::STATE_COOKIE,
			$value,
			array(
				'expires'  => $expires,
				'path'     => SITECOOKIEPATH,
				'secure'   => is_ssl(),
				'httponly' => true,
				// Lax: the cookie must come along on Tessera's top-level redirect back here.
				'samesite' => 'Lax',
			)
		);
	}

	/** Logs why, and shows the person a plain message (escaped by wp_die). */
	private static function fail( string $event, string $detail, string $message, int $status = 400 ): never {
		Tessera_Log::write( $event, $detail );
		wp_die(
			esc_html( $message ) . ' <a href="' . esc_url( wp_login_url() ) . '">' . esc_html__( 'Back to the login page', 'tessera' ) . '</a>',
			esc_html__( 'Sign-in failed', 'tessera' ),
			array( 'response' => $status )
		);
		exit;
	}
}
