<?php
/**
 * Tessera's OpenID Provider metadata (discovery) and signing keys (JWKS), cached in
 * transients.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The issuer's metadata and keys. */
final class Tessera_Provider {
	/** Discovery is cached for an hour; the keys for ten minutes (and refetched on an unknown kid). */
	const DISCOVERY_TTL = HOUR_IN_SECONDS;
	const JWKS_TTL      = 10 * MINUTE_IN_SECONDS;
	/**
	 * An unknown kid refetches the JWKS at most this often: a stream of tokens with made-up
	 * kids must not turn into a stream of requests to Tessera.
	 */
	const REFETCH_INTERVAL = 30;

	private string $issuer;
	private ?array $metadata = null;
	private ?array $keys     = null;

	public function __construct( string $issuer ) {
		$this->issuer = $issuer;
	}

	/** The configured issuer, or null when the plugin is not configured. */
	public static function configured(): ?self {
		return Tessera_Settings::is_configured() ? new self( (string) Tessera_Settings::get( 'issuer' ) ) : null;
	}

	public function issuer(): string {
		return $this->issuer;
	}

	/**
	 * The discovery document, or null when Tessera cannot be reached or answers with another
	 * issuer (OIDC Discovery §4.3: the issuer in the document must be exactly the one asked).
	 */
	public function metadata(): ?array {
		if ( null !== $this->metadata ) {
			return $this->metadata;
		}
		$cached = get_transient( 'tessera_discovery' );
		if ( is_array( $cached ) && ( $cached['issuer'] ?? '' ) === $this->issuer ) {
			return $this->metadata = $cached;
		}
		$document = Tessera_Http::get_json( $this->issuer . '/.well-known/openid-configuration' );
		if ( null === $document ) {
			return null;
		}
		if ( ( $document['issuer'] ?? '' ) !== $this->issuer ) {
			Tessera_Log::write( 'discovery.refused', 'the discovery document names another issuer: ' . (string) ( $document['issuer'] ?? '(none)' ) );
			return null;
		}
		foreach ( array( 'authorization_endpoint', 'token_endpoint', 'jwks_uri' ) as $required ) {
			if ( ! is_string( $document[ $required ] ?? null ) ) {
				Tessera_Log::write( 'discovery.refused', 'the discovery document has no ' . $required );
				return null;
			}
		}
		set_transient( 'tessera_discovery', $document, self::DISCOVERY_TTL );
		return $this->metadata = $document;
	}

	/** One endpoint from discovery, or null. */
	public function endpoint( string $name ): ?string {
		$metadata = $this->metadata();
		$url      = $metadata[ $name ] ?? null;
		return is_string( $url ) ? $url : null;
	}

	/**
	 * The JWK with this kid: from the cached set, else from a fresh fetch (the key may be new:
	 * Tessera rotates its keys), at most once per REFETCH_INTERVAL.
	 */
	public function key( string $kid ): ?array {
		$keys = $this->keys ?? get_transient( 'tessera_jwks' );
		if ( is_array( $keys ) ) {
			$this->keys = $keys;
			if ( isset( $keys[ $kid ] ) ) {
				return $keys[ $kid ];
			}
			if ( false !== get_transient( 'tessera_jwks_refetched' ) ) {
				return null;
			}
			Tessera_Log::write( 'jwks.refetch', 'unknown kid ' . $kid . ': fetching the keys again' );
		}
		$keys = $this->fetch_keys();
		if ( null === $keys ) {
			throw new Tessera_Token_Error( 'unavailable', 'the signing keys could not be fetched from Tessera' );
		}
		return $keys[ $kid ] ?? null;
	}

	/** Fetches the JWKS and caches it by kid; null when it cannot be fetched. */
	private function fetch_keys(): ?array {
		set_transient( 'tessera_jwks_refetched', 1, self::REFETCH_INTERVAL );
		$uri = $this->endpoint( 'jwks_uri' );
		$set = null === $uri ? null : Tessera_Http::get_json( $uri );
		if ( ! is_array( $set ) || ! is_array( $set['keys'] ?? null ) ) {
			return null;
		}
		$keys = array();
		foreach ( $set['keys'] as $jwk ) {
			// Signing keys only; a key marked for encryption is never used to verify.
			if ( is_array( $jwk ) && is_string( $jwk['kid'] ?? null ) && ( $jwk['use'] ?? 'sig' ) === 'sig' ) {
				$keys[ $jwk['kid'] ] = $jwk;
			}
		}
		set_transient( 'tessera_jwks', $keys, self::JWKS_TTL );
		return $this->keys = $keys;
	}
}
