<?php
/**
 * The plugin's settings: one option, `tessera_settings`, read once per request.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** Reads and sanitises the settings. */
final class Tessera_Settings {
	const OPTION = 'tessera_settings';

	/** @var array<string, mixed>|null */
	private static ?array $cache = null;

	/** The defaults of every setting. */
	public static function defaults(): array {
		return array(
			'issuer'               => '',
			'client_id'            => '',
			'client_secret'        => '',
			// 'email': link by verified email address; 'sub': by the Tessera user id kept in user meta.
			'match'                => 'email',
			'create_users'         => true,
			'button_label'         => __( 'Sign in with Tessera', 'tessera' ),
			// Optional parent-domain cookie for nodebb-plugin-session-sharing.
			'shared_cookie_name'   => '',
			'shared_cookie_domain' => '',
			'shared_cookie_secret' => '',
		);
	}

	/** All settings, with defaults for what is missing. */
	public static function all(): array {
		if ( null === self::$cache ) {
			$stored      = get_option( self::OPTION, array() );
			self::$cache = array_merge( self::defaults(), is_array( $stored ) ? $stored : array() );
		}
		return self::$cache;
	}

	/** One setting. */
	public static function get( string $key ) {
		return self::all()[ $key ] ?? null;
	}

	/** Forgets the per-request copy (after an update). */
	public static function flush(): void {
		self::$cache = null;
	}

	/** Whether sign-in through Tessera is configured. */
	public static function is_configured(): bool {
		return '' !== self::get( 'issuer' ) && '' !== self::get( 'client_id' ) && '' !== self::get( 'client_secret' );
	}

	/** Where Tessera sends the browser back after sign-in (register it exactly). */
	public static function redirect_uri(): string {
		return add_query_arg( 'action', 'tessera_callback', wp_login_url() );
	}

	/** Where Tessera sends the browser after a logout (register it exactly). */
	public static function post_logout_redirect_uri(): string {
		return add_query_arg( 'loggedout', 'true', wp_login_url() );
	}

	/** The back-channel logout endpoint (register it as the app's backchannel_logout_uri). */
	public static function backchannel_uri(): string {
		return rest_url( 'tessera/v1/backchannel-logout' );
	}

	/**
	 * Sanitises the settings form (register_setting's sanitize_callback).
	 *
	 * @param mixed $input What the form posted.
	 */
	public static function sanitize( $input ): array {
		$old   = self::all();
		// options.php has already unslashed the posted values (unslashing again would eat backslashes).
		$input = is_array( $input ) ? $input : array();
		$out   = self::defaults();

		$issuer = untrailingslashit( trim( self::text( $input, 'issuer' ) ) );
		// Only an http(s) URL without query or fragment can be an OpenID issuer.
		$parts  = '' === $issuer ? array() : wp_parse_url( $issuer );
		if ( '' !== $issuer && ( ! is_array( $parts ) || ! in_array( $parts['scheme'] ?? '', array( 'http', 'https' ), true ) || empty( $parts['host'] ) || isset( $parts['query'] ) || isset( $parts['fragment'] ) ) ) {
			add_settings_error( self::OPTION, 'issuer', __( 'The issuer must be an http(s) URL without query or fragment.', 'tessera' ) );
			$issuer = $old['issuer'];
		}
		$out['issuer']    = esc_url_raw( $issuer, array( 'http', 'https' ) );
		$out['client_id'] = sanitize_text_field( self::text( $input, 'client_id' ) );
		// The secret is never printed back into the form: an empty field keeps the stored one.
		$secret               = trim( self::text( $input, 'client_secret' ) );
		$out['client_secret'] = '' === $secret ? (string) $old['client_secret'] : $secret;
		$out['match']         = in_array( $input['match'] ?? '', array( 'email', 'sub' ), true ) ? $input['match'] : 'email';
		$out['create_users']  = ! empty( $input['create_users'] );
		$label                = sanitize_text_field( self::text( $input, 'button_label' ) );
		$out['button_label']  = '' === $label ? self::defaults()['button_label'] : $label;

		$out['shared_cookie_name']   = preg_replace( '/[^A-Za-z0-9_\-]/', '', self::text( $input, 'shared_cookie_name' ) );
		$out['shared_cookie_domain'] = preg_replace( '/[^A-Za-z0-9.\-]/', '', self::text( $input, 'shared_cookie_domain' ) );
		$shared_secret               = trim( self::text( $input, 'shared_cookie_secret' ) );
		$out['shared_cookie_secret'] = '' === $shared_secret ? (string) $old['shared_cookie_secret'] : $shared_secret;

		// A changed issuer must not reuse the keys or endpoints of the old one.
		if ( $out['issuer'] !== $old['issuer'] ) {
			delete_transient( 'tessera_discovery' );
			delete_transient( 'tessera_jwks' );
		}
		self::flush();
		return $out;
	}

	/**
	 * One posted field as a string; '' when missing or not a string (a forged form can post
	 * `field[]=…`: casting that array would print a PHP warning and store "Array").
	 *
	 * @param array  $input What the form posted.
	 * @param string $key   The field.
	 */
	private static function text( array $input, string $key ): string {
		return isset( $input[ $key ] ) && is_string( $input[ $key ] ) ? $input[ $key ] : '';
	}
}
