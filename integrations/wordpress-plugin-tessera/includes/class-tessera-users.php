<?php
/**
 * The WordPress user of a Tessera sign-in: matched by verified email or by the Tessera user
 * id kept in user meta (`tessera_sub`), created when allowed.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** Finds or creates users from ID token claims. */
final class Tessera_Users {
	const META = 'tessera_sub';

	/** The WordPress user linked to this Tessera user id, or null. */
	public static function by_sub( string $sub ): ?WP_User {
		$found = get_users(
			array(
				'meta_key'    => self::META, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- one indexed lookup per sign-in or logout.
				'meta_value'  => $sub, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_value
				'number'      => 2,
				'count_total' => false,
			)
		);
		// Two accounts linked to one Tessera user would be a corrupted link: use neither.
		return 1 === count( $found ) ? $found[0] : null;
	}

	/**
	 * The user for these claims, or a WP_Error saying why not.
	 *
	 * @param array $claims Validated ID token claims.
	 * @return WP_User|WP_Error
	 */
	public static function resolve( array $claims ) {
		$sub      = (string) $claims['sub'];
		$verified = true === ( $claims['email_verified'] ?? null ) && is_string( $claims['email'] ?? null ) && is_email( $claims['email'] );
		$user     = self::by_sub( $sub );
		if ( null === $user && 'email' === Tessera_Settings::get( 'match' ) && $verified ) {
			// Linking by email only when Tessera says the address is verified: otherwise anyone
			// could take over a WordPress account by registering its address at Tessera.
			$by_email = get_user_by( 'email', $claims['email'] );
			if ( $by_email instanceof WP_User ) {
				$linked = (string) get_user_meta( $by_email->ID, self::META, true );
				if ( '' !== $linked && $linked !== $sub ) {
					return new WP_Error( 'tessera_linked_elsewhere', __( 'This email address belongs to a WordPress account linked to another Tessera user.', 'tessera' ) );
				}
				$user = $by_email;
			}
		}
		if ( null === $user ) {
			if ( ! Tessera_Settings::get( 'create_users' ) ) {
				return new WP_Error( 'tessera_no_account', __( 'There is no WordPress account for this Tessera user.', 'tessera' ) );
			}
			$created = self::create( $claims, $verified );
			if ( is_wp_error( $created ) ) {
				return $created;
			}
			$user = $created;
		}
		update_user_meta( $user->ID, self::META, $sub );
		return $user;
	}

	/** Creates a user from the claims (an address only when verified and not in use). */
	private static function create( array $claims, bool $verified ) {
		$base = sanitize_user( (string) ( $claims['preferred_username'] ?? '' ), true );
		if ( '' === $base ) {
			$base = 'tessera_' . substr( hash( 'sha256', (string) $claims['sub'] ), 0, 10 );
		}
		$login = $base;
		for ( $i = 2; username_exists( $login ); $i++ ) {
			$login = $base . '_' . $i;
		}
		$email   = $verified && ! email_exists( $claims['email'] ) ? $claims['email'] : '';
		$user_id = wp_insert_user(
			array(
				'user_login'   => $login,
				// A random password nobody knows: this account signs in through Tessera.
				'user_pass'    => wp_generate_password( 32, true, true ),
				'user_email'   => $email,
				'first_name'   => sanitize_text_field( (string) ( $claims['given_name'] ?? '' ) ),
				'last_name'    => sanitize_text_field( (string) ( $claims['family_name'] ?? '' ) ),
				'display_name' => sanitize_text_field( (string) ( $claims['name'] ?? $login ) ),
				'role'         => get_option( 'default_role', 'subscriber' ),
			)
		);
		if ( is_wp_error( $user_id ) ) {
			return $user_id;
		}
		Tessera_Log::write( 'signin.user_created', sprintf( 'user %d (%s) for Tessera user %s', $user_id, $login, $claims['sub'] ) );
		return get_user_by( 'id', $user_id );
	}
}
