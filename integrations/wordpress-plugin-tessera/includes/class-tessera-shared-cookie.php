<?php
/**
 * Optional: the parent-domain cookie that nodebb-plugin-session-sharing reads, for sites
 * where Tessera does not set it itself. Set on a Tessera sign-in, cleared on logout. It is a
 * JWT (HS256, the secret shared with session-sharing) with the payload session-sharing
 * expects (`id`, `username`, `email`, `firstName`, `lastName`, `picture`) and the Tessera
 * `sid`.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The shared cookie. */
final class Tessera_Shared_Cookie {
	public static function enabled(): bool {
		return '' !== Tessera_Settings::get( 'shared_cookie_name' ) && '' !== Tessera_Settings::get( 'shared_cookie_secret' );
	}

	/** Sets the cookie for this user and Tessera session. */
	public static function set( WP_User $user, array $claims ): void {
		if ( ! self::enabled() || headers_sent() ) {
			return;
		}
		$header  = Tessera_Jwt::b64url_encode( wp_json_encode( array( 'alg' => 'HS256', 'typ' => 'JWT' ) ) );
		$payload = Tessera_Jwt::b64url_encode(
			wp_json_encode(
				array(
					'id'        => (string) $claims['sub'],
					'username'  => $user->user_login,
					'email'     => $user->user_email,
					'firstName' => $user->first_name,
					'lastName'  => $user->last_name,
					'picture'   => get_avatar_url( $user->ID ),
					'sid'       => (string) $claims['sid'],
					'iat'       => time(),
				)
			)
		);
		$signature = Tessera_Jwt::b64url_encode( hash_hmac( 'sha256', $header . '.' . $payload, (string) Tessera_Settings::get( 'shared_cookie_secret' ), true ) );
		self::write( $header . '.' . $payload . '.' . $signature, 0 );
	}

	/** Clears the cookie. */
	public static function clear(): void {
		if ( self::enabled() && ! headers_sent() ) {
			self::write( '', time() - YEAR_IN_SECONDS );
		}
	}

	private static function write( string $value, int $expires ): void {
		$options = array(
			'expires'  => $expires,
			'path'     => '/',
			// HttpOnly: the forum reads it on the server; no script on either site needs it.
			'secure'   => is_ssl(),
			'httponly' => true,
			'samesite' => 'Lax',
		);
		$domain = (string) Tessera_Settings::get( 'shared_cookie_domain' );
		if ( '' !== $domain ) {
			$options['domain'] = $domain;
		}
		setcookie( (string) Tessera_Settings::get( 'shared_cookie_name' ), $value, $options );
	}
}
