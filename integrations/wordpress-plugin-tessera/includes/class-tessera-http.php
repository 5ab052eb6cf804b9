<?php
/**
 * Calls to Tessera through WordPress' HTTP API.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** One HTTP call's outcome. */
final class Tessera_Http {
	/**
	 * Sends a request; returns [status, body] or [0, error text].
	 *
	 * wp_remote_request, not wp_safe_remote_request: the issuer is set by an administrator and
	 * may be on a private address (Tessera beside WordPress), which the "safe" variant refuses.
	 * Redirects are not followed: a token endpoint that redirects is misconfigured, and a
	 * followed redirect would carry the client credentials elsewhere.
	 *
	 * @param string $method  HTTP method.
	 * @param string $url     Absolute URL.
	 * @param array  $args    Extra arguments (headers, body).
	 * @return array{0:int,1:string}
	 */
	public static function request( string $method, string $url, array $args = array() ): array {
		$response = wp_remote_request(
			$url,
			array_merge(
				array(
					'method'      => $method,
					'timeout'     => 10,
					'redirection' => 0,
					'user-agent'  => 'tessera-wordpress/' . TESSERA_PLUGIN_VERSION,
				),
				$args
			)
		);
		if ( is_wp_error( $response ) ) {
			return array( 0, $response->get_error_message() );
		}
		return array( (int) wp_remote_retrieve_response_code( $response ), (string) wp_remote_retrieve_body( $response ) );
	}

	/** HTTP Basic credentials of the client (RFC 6749 §2.3.1: each part form-encoded first). */
	public static function basic_auth(): string {
		return 'Basic ' . base64_encode( rawurlencode( (string) Tessera_Settings::get( 'client_id' ) ) . ':' . rawurlencode( (string) Tessera_Settings::get( 'client_secret' ) ) );
	}

	/**
	 * GETs a JSON object; null when it cannot.
	 *
	 * @param string $url Absolute URL.
	 */
	public static function get_json( string $url ): ?array {
		[ $status, $body ] = self::request( 'GET', $url, array( 'headers' => array( 'accept' => 'application/json' ) ) );
		if ( 200 !== $status ) {
			Tessera_Log::write( 'http.failed', sprintf( 'GET %s answered %s', $url, 0 === $status ? $body : 'HTTP ' . $status ) );
			return null;
		}
		$json = json_decode( $body, true );
		return is_array( $json ) ? $json : null;
	}
}
