<?php
/**
 * WordPress sessions and the Tessera sessions they came from.
 *
 * Each WordPress session (a row of WP_Session_Tokens) gets, through the
 * 'attach_session_information' filter, the moment it began in milliseconds and — when it was
 * signed in through Tessera — the Tessera session id (`sid`), the Tessera user id (`sub`) and
 * the ID token (the `id_token_hint` of the logout). A logout token then ends exactly the
 * WordPress sessions of the Tessera sessions it names (docs/decisions/0006-late-logouts.md).
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** Session meta and ending sessions. */
final class Tessera_Sessions {
	/** What the sign-in in progress attaches to the session WordPress is about to create. */
	private static ?array $login_context = null;

	/** The Tessera data of this request's WordPress session (read when its cookie is validated). */
	private static ?array $current = null;

	public static function register(): void {
		add_filter( 'attach_session_information', array( self::class, 'attach' ), 10, 2 );
		add_action( 'auth_cookie_valid', array( self::class, 'remember_current' ), 10, 2 );
	}

	/** Called by the sign-in right before wp_set_auth_cookie(). */
	public static function set_login_context( int $user_id, string $sub, string $sid, string $id_token ): void {
		self::$login_context = array( 'user_id' => $user_id, 'sub' => $sub, 'sid' => $sid, 'id_token' => $id_token );
	}

	public static function clear_login_context(): void {
		self::$login_context = null;
	}

	/**
	 * Adds the start time (every session: a logout that names no Tessera session compares
	 * it with `revoked_at`) and the Tessera ids (sessions signed in through Tessera).
	 *
	 * @param array $session The session's information so far.
	 * @param int   $user_id Its user.
	 */
	public static function attach( $session, $user_id ): array {
		$session                       = is_array( $session ) ? $session : array();
		$session['tessera_started_ms'] = (int) floor( microtime( true ) * 1000 );
		$context                       = self::$login_context;
		if ( null !== $context && (int) $user_id === $context['user_id'] ) {
			$session['tessera_sid']      = $context['sid'];
			$session['tessera_sub']      = $context['sub'];
			$session['tessera_id_token'] = $context['id_token'];
		}
		return $session;
	}

	/**
	 * Keeps this request's session data: wp_logout() destroys the session before its
	 * 'wp_logout' action runs, so the logout reads what was kept here.
	 *
	 * @param array   $cookie The validated auth cookie's parts (with 'token').
	 * @param WP_User $user   Its user.
	 */
	public static function remember_current( $cookie, $user ): void {
		if ( ! is_array( $cookie ) || ! isset( $cookie['token'] ) || ! $user instanceof WP_User ) {
			return;
		}
		$session = WP_Session_Tokens::get_instance( $user->ID )->get( $cookie['token'] );
		if ( is_array( $session ) && isset( $session['tessera_sid'] ) ) {
			self::$current = array( 'user_id' => $user->ID, 'sid' => (string) $session['tessera_sid'], 'id_token' => (string) ( $session['tessera_id_token'] ?? '' ) );
		}
	}

	/** The Tessera data of this request's session, or null. */
	public static function current(): ?array {
		return self::$current;
	}

	/**
	 * Ends the user's WordPress sessions for which `$ends` says yes; returns how many.
	 *
	 * WP_Session_Tokens has no public "destroy by verifier" (destroy() takes the raw token,
	 * which is never stored), so this calls the manager's own protected get_sessions() and
	 * update_session() — the storage contract every session manager implements (the default
	 * one keeps them in user meta; a site may plug in another through
	 * 'session_token_manager'). Nothing here touches the storage directly.
	 *
	 * @param int      $user_id WordPress user.
	 * @param callable $ends    fn(array $session): bool.
	 */
	public static function end_where( int $user_id, callable $ends ): int {
		$manager = WP_Session_Tokens::get_instance( $user_id );
		$access  = Closure::bind(
			static function ( WP_Session_Tokens $m, callable $ends ): int {
				$count = 0;
				foreach ( $m->get_sessions() as $verifier => $session ) {
					if ( is_array( $session ) && $ends( $session ) ) {
						$m->update_session( $verifier, null );
						++$count;
					}
				}
				return $count;
			},
			null,
			WP_Session_Tokens::class
		);
		return $access( $manager, $ends );
	}

	/**
	 * The users that have a session signed in from this Tessera sid: for a logout token that
	 * names only the sid. One query on WordPress' own session rows (user meta
	 * `session_tokens`, where the default session manager keeps them), matching the sid as PHP
	 * serialized it beside its key; end_where() then checks each match exactly. Sites that plug
	 * in another session manager get none (logged): Tessera's tokens always name `sub` too,
	 * which needs no search.
	 *
	 * @param string $sid The Tessera session id.
	 * @return int[]
	 */
	public static function users_with_sid( string $sid ): array {
		global $wpdb;
		if ( 'WP_User_Meta_Session_Tokens' !== apply_filters( 'session_token_manager', 'WP_User_Meta_Session_Tokens' ) ) {
			Tessera_Log::write( 'backchannel.sid_only', 'a logout token names only session ' . $sid . ', and this site keeps sessions outside user meta: nothing to search' );
			return array();
		}
		// The stored form of the pair, not a value to store (hence serialize, not maybe_serialize).
		$pair = serialize( 'tessera_sid' ) . serialize( $sid ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.serialize_serialize
		$ids  = $wpdb->get_col( $wpdb->prepare( "SELECT user_id FROM {$wpdb->usermeta} WHERE meta_key = %s AND meta_value LIKE %s LIMIT 10", 'session_tokens', '%' . $wpdb->esc_like( $pair ) . '%' ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.SlowDBQuery -- no API searches session rows; only for tokens without sub.
		return array_map( 'intval', $ids );
	}

	/**
	 * When a session began, in milliseconds. Sessions created before the plugin was active
	 * have only WordPress' `login` (seconds): the end of that second is taken, so a session is
	 * never taken for older than it is (a late logout must not end a newer session).
	 */
	public static function started_ms( array $session ): int {
		if ( isset( $session['tessera_started_ms'] ) && is_int( $session['tessera_started_ms'] ) ) {
			return $session['tessera_started_ms'];
		}
		if ( ! isset( $session['login'] ) || ! is_numeric( $session['login'] ) ) {
			// No start time at all (another plugin rewrote the session): never ended by time.
			return PHP_INT_MAX;
		}
		return (int) $session['login'] * 1000 + 999;
	}
}
