<?php
/**
 * WordPress logout ends the Tessera session everywhere.
 *
 * - In the browser (wp-login.php?action=logout): after WordPress has ended its own session,
 *   the browser goes to Tessera's end-session endpoint (OIDC RP-Initiated Logout) with the
 *   ID token as id_token_hint and the registered post_logout_redirect_uri; Tessera ends the
 *   session, tells every other app, and sends the browser back to the login page.
 * - Anywhere else (a logout without a browser redirect: REST, WP-CLI, another plugin calling
 *   wp_logout()): a server-to-server call, DELETE /api/v1/sessions/{sid} with the client's
 *   credentials. The same call is the fallback when the browser redirect did not happen.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The logout. */
final class Tessera_Logout {
	/** The session being logged out, until the browser is sent on or the server call is made. */
	private static ?array $pending = null;

	/** Tessera's end-session URL this logout offered to WordPress' redirect, if any. */
	private static ?string $end_session_url = null;

	public static function register(): void {
		add_action( 'wp_logout', array( self::class, 'on_logout' ), 10, 1 );
		// After other plugins' filters: Tessera's page must come first, it sends the browser back.
		add_filter( 'logout_redirect', array( self::class, 'redirect' ), 99, 1 );
		// Last of all: whether the browser really goes to Tessera (a plugin's 'logout_redirect'
		// filter after ours may send it elsewhere; the server call is made then).
		add_filter( 'wp_redirect', array( self::class, 'redirecting' ), PHP_INT_MAX, 1 );
		add_action( 'shutdown', array( self::class, 'fallback' ) );
	}

	/** 'wp_logout': WordPress' own session is already gone; end the Tessera one. */
	public static function on_logout( $user_id = 0 ): void {
		Tessera_Shared_Cookie::clear();
		$current = Tessera_Sessions::current();
		if ( null === $current || ! Tessera_Settings::is_configured() ) {
			return;
		}
		self::$pending = $current;
		global $pagenow;
		$browser = 'wp-login.php' === $pagenow && ! wp_doing_ajax() && ! ( defined( 'REST_REQUEST' ) && REST_REQUEST ) && ! ( defined( 'WP_CLI' ) && WP_CLI );
		if ( ! $browser ) {
			self::end_server_to_server();
		}
	}

	/**
	 * 'logout_redirect': sends the browser to Tessera's end-session endpoint.
	 *
	 * @param string $redirect_to Where WordPress would go.
	 */
	public static function redirect( $redirect_to ) {
		$pending = self::$pending;
		if ( null === $pending ) {
			return $redirect_to;
		}
		$provider = Tessera_Provider::configured();
		$endpoint = $provider ? $provider->endpoint( 'end_session_endpoint' ) : null;
		if ( null === $endpoint || '' === $pending['id_token'] ) {
			// No browser flow possible: the shutdown fallback calls Tessera from the server.
			return $redirect_to;
		}
		// Tessera accepts an expired ID token as hint, but only while its signing key is still
		// published (keys rotate weekly; a "remember me" session lasts two). With a hint it
		// cannot verify, Tessera would ask the person to confirm instead of ending the session
		// at once: end it from the server then, and stay on WordPress' logged-out page.
		try {
			Tessera_Jwt::verify( $pending['id_token'], $provider );
		} catch ( Tessera_Token_Error $e ) {
			Tessera_Log::write( 'logout.hint_stale', sprintf( 'user %d: the ID token of session %s no longer verifies (%s); ending it from the server', $pending['user_id'], $pending['sid'], $e->getMessage() ) );
			return $redirect_to;
		}
		// wp-login.php uses wp_safe_redirect: Tessera's host must be allowed, for this redirect only.
		$host = wp_parse_url( $endpoint, PHP_URL_HOST );
		add_filter(
			'allowed_redirect_hosts',
			static function ( $hosts ) use ( $host ) {
				$hosts[] = $host;
				return $hosts;
			}
		);
		self::$end_session_url = add_query_arg(
			array(
				'id_token_hint'            => rawurlencode( $pending['id_token'] ),
				'client_id'                => rawurlencode( (string) Tessera_Settings::get( 'client_id' ) ),
				'post_logout_redirect_uri' => rawurlencode( Tessera_Settings::post_logout_redirect_uri() ),
			),
			$endpoint
		);
		return self::$end_session_url;
	}

	/**
	 * 'wp_redirect': the logout is left to Tessera's page only when the browser is really sent
	 * there. When a later filter chose another place, the pending logout stays pending and the
	 * shutdown fallback ends the Tessera session from the server.
	 *
	 * @param string $location Where WordPress redirects.
	 */
	public static function redirecting( $location ) {
		$pending = self::$pending;
		if ( null !== $pending && null !== self::$end_session_url && is_string( $location ) && wp_sanitize_redirect( $location ) === wp_sanitize_redirect( self::$end_session_url ) ) {
			self::$pending = null;
			Tessera_Log::write( 'logout.browser', sprintf( 'user %d: sending the browser to Tessera to end session %s', $pending['user_id'], $pending['sid'] ) );
		}
		return $location;
	}

	/** 'shutdown': a logout whose browser redirect did not happen is ended from the server. */
	public static function fallback(): void {
		if ( null !== self::$pending ) {
			self::end_server_to_server();
		}
	}

	/** DELETE /api/v1/sessions/{sid} with the client credentials (the app joined that session). */
	private static function end_server_to_server(): void {
		$pending       = self::$pending;
		self::$pending = null;
		if ( null === $pending ) {
			return;
		}
		$url               = (string) Tessera_Settings::get( 'issuer' ) . '/api/v1/sessions/' . rawurlencode( $pending['sid'] );
		[ $status, $body ] = Tessera_Http::request( 'DELETE', $url, array( 'headers' => array( 'authorization' => Tessera_Http::basic_auth() ) ) );
		if ( 204 === $status ) {
			Tessera_Log::write( 'logout.server', sprintf( 'user %d: Tessera ended session %s', $pending['user_id'], $pending['sid'] ) );
		} elseif ( 404 === $status ) {
			// Already ended (or never this app's): nothing left to end.
			Tessera_Log::write( 'logout.server', sprintf( 'user %d: Tessera session %s had already ended', $pending['user_id'], $pending['sid'] ) );
		} else {
			Tessera_Log::write( 'logout.server_failed', sprintf( 'user %d: Tessera session %s may still be active: %s', $pending['user_id'], $pending['sid'], 0 === $status ? $body : 'HTTP ' . $status ) );
		}
	}
}
