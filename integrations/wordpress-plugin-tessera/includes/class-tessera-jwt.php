<?php
/**
 * Compact JWS verification against Tessera's JWKS, with PHP's own sodium (EdDSA / Ed25519)
 * and openssl (ES256, RS256): the three algorithms Tessera signs ID and logout tokens with
 * (an OIDC client's `id_token_signed_response_alg`, RS256 by default; logout tokens use the
 * same one).
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** A token that is refused: a stable code and a reason (safe to log; never the token). */
final class Tessera_Token_Error extends Exception {
	/** @var string */
	public string $reason_code;

	public function __construct( string $code, string $message ) {
		parent::__construct( $message );
		$this->reason_code = $code;
	}
}

/** Verifies JWTs. */
final class Tessera_Jwt {
	/** The only algorithms accepted. `none` and HMAC are never accepted (alg confusion). */
	const ALGORITHMS = array( 'EdDSA', 'ES256', 'RS256' );

	/** Tokens larger than this are refused before any parsing (Tessera's are below 5 KB). */
	const MAX_LENGTH = 16384;

	/** Strict base64url (no padding, no other characters); null when malformed. */
	public static function b64url_decode( string $text ): ?string {
		if ( '' === $text || ! preg_match( '/^[A-Za-z0-9_-]+$/', $text ) || 1 === strlen( $text ) % 4 ) {
			return null;
		}
		$raw = base64_decode( strtr( $text, '-_', '+/' ), true );
		return false === $raw ? null : $raw;
	}

	/** base64url without padding. */
	public static function b64url_encode( string $raw ): string {
		return rtrim( strtr( base64_encode( $raw ), '+/', '-_' ), '=' );
	}

	/**
	 * Splits and decodes a compact JWS. Throws Tessera_Token_Error('malformed') on anything
	 * that is not three base64url parts with JSON objects.
	 *
	 * @return array{0:array,1:array,2:string,3:string} header, claims, signing input, signature
	 */
	public static function decode( string $jwt ): array {
		if ( strlen( $jwt ) > self::MAX_LENGTH ) {
			throw new Tessera_Token_Error( 'malformed', 'token too long' );
		}
		$parts = explode( '.', $jwt );
		if ( 3 !== count( $parts ) ) {
			throw new Tessera_Token_Error( 'malformed', 'not a compact JWS' );
		}
		$header    = self::b64url_decode( $parts[0] );
		$payload   = self::b64url_decode( $parts[1] );
		$signature = self::b64url_decode( $parts[2] );
		if ( null === $header || null === $payload || null === $signature ) {
			throw new Tessera_Token_Error( 'malformed', 'not base64url' );
		}
		$header = json_decode( $header, true, 8 );
		$claims = json_decode( $payload, true, 16 );
		// JSON objects only: a JSON list (or a scalar) is not a JOSE header or a claims set.
		$object = static fn( $v ): bool => is_array( $v ) && ( array() === $v || ! array_is_list( $v ) );
		if ( ! $object( $header ) || ! $object( $claims ) || array() === $header ) {
			throw new Tessera_Token_Error( 'malformed', 'header or claims are not JSON objects' );
		}
		return array( $header, $claims, $parts[0] . '.' . $parts[1], $signature );
	}

	/**
	 * Verifies the signature of `$jwt` with the issuer's keys; returns [header, claims].
	 * The key is chosen by `kid`; an unknown kid refetches the JWKS once (key rotation).
	 * The header's alg must be one of ours and match the key's type and declared alg, so a
	 * token cannot pick a weaker way of checking itself.
	 *
	 * @param string        $jwt      The compact JWS.
	 * @param Tessera_Provider $provider The issuer's metadata and keys.
	 * @return array{0:array,1:array}
	 */
	public static function verify( string $jwt, Tessera_Provider $provider ): array {
		[ $header, $claims, $input, $signature ] = self::decode( $jwt );
		$alg = $header['alg'] ?? null;
		if ( ! is_string( $alg ) || ! in_array( $alg, self::ALGORITHMS, true ) ) {
			throw new Tessera_Token_Error( 'bad_signature', 'algorithm not accepted: ' . ( is_string( $alg ) ? $alg : '?' ) );
		}
		if ( isset( $header['crit'] ) ) {
			// RFC 7515 §4.1.11: a critical extension we do not understand makes the token invalid.
			throw new Tessera_Token_Error( 'malformed', 'crit header not supported' );
		}
		$kid = $header['kid'] ?? null;
		if ( ! is_string( $kid ) || '' === $kid ) {
			throw new Tessera_Token_Error( 'bad_signature', 'no kid' );
		}
		$jwk = $provider->key( $kid );
		if ( null === $jwk ) {
			throw new Tessera_Token_Error( 'bad_signature', 'unknown kid ' . $kid );
		}
		if ( isset( $jwk['alg'] ) && $jwk['alg'] !== $alg ) {
			throw new Tessera_Token_Error( 'bad_signature', 'alg does not match the key' );
		}
		if ( ! self::check_signature( $alg, $jwk, $input, $signature ) ) {
			throw new Tessera_Token_Error( 'bad_signature', 'signature does not verify' );
		}
		return array( $header, $claims );
	}

	/** Checks one signature with one JWK. */
	private static function check_signature( string $alg, array $jwk, string $input, string $signature ): bool {
		switch ( $alg ) {
			case 'EdDSA':
				if ( ( $jwk['kty'] ?? '' ) !== 'OKP' || ( $jwk['crv'] ?? '' ) !== 'Ed25519' ) {
					return false;
				}
				$public = self::b64url_decode( (string) ( $jwk['x'] ?? '' ) );
				if ( null === $public || SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES !== strlen( $public ) || SODIUM_CRYPTO_SIGN_BYTES !== strlen( $signature ) ) {
					return false;
				}
				return sodium_crypto_sign_verify_detached( $signature, $input, $public );
			case 'ES256':
				if ( ( $jwk['kty'] ?? '' ) !== 'EC' || ( $jwk['crv'] ?? '' ) !== 'P-256' || 64 !== strlen( $signature ) ) {
					return false;
				}
				$x = self::b64url_decode( (string) ( $jwk['x'] ?? '' ) );
				$y = self::b64url_decode( (string) ( $jwk['y'] ?? '' ) );
				if ( null === $x || null === $y || 32 !== strlen( $x ) || 32 !== strlen( $y ) ) {
					return false;
				}
				// SubjectPublicKeyInfo of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
				$der = hex2bin( '3059301306072a8648ce3d020106082a8648ce3d030107034200' ) . "\x04" . $x . $y;
				// JWS carries R || S (RFC 7518 §3.4); openssl wants an ASN.1 ECDSA-Sig-Value.
				$sig = self::der_sequence( self::der_integer( substr( $signature, 0, 32 ) ) . self::der_integer( substr( $signature, 32 ) ) );
				return self::openssl_verify( $input, $sig, $der );
			case 'RS256':
				if ( ( $jwk['kty'] ?? '' ) !== 'RSA' ) {
					return false;
				}
				$n = self::b64url_decode( (string) ( $jwk['n'] ?? '' ) );
				$e = self::b64url_decode( (string) ( $jwk['e'] ?? '' ) );
				// RFC 7518 §3.3: keys of 2048 bits or more.
				if ( null === $n || null === $e || strlen( ltrim( $n, "\0" ) ) < 256 ) {
					return false;
				}
				$rsa = self::der_sequence( self::der_integer( $n ) . self::der_integer( $e ) );
				$der = self::der_sequence( self::der_sequence( hex2bin( '06092a864886f70d0101010500' ) ) . "\x03" . self::der_length( strlen( $rsa ) + 1 ) . "\x00" . $rsa );
				return self::openssl_verify( $input, $signature, $der );
		}
		return false;
	}

	private static function openssl_verify( string $input, string $signature, string $spki_der ): bool {
		$pem = "-----BEGIN PUBLIC KEY-----\n" . chunk_split( base64_encode( $spki_der ), 64, "\n" ) . "-----END PUBLIC KEY-----\n";
		$key = openssl_pkey_get_public( $pem );
		if ( false === $key ) {
			return false;
		}
		// Only 1 is a valid signature (0 invalid, -1 error).
		return 1 === openssl_verify( $input, $signature, $key, OPENSSL_ALGO_SHA256 );
	}

	private static function der_length( int $length ): string {
		if ( $length < 128 ) {
			return chr( $length );
		}
		$bytes = ltrim( pack( 'N', $length ), "\0" );
		return chr( 0x80 | strlen( $bytes ) ) . $bytes;
	}

	private static function der_sequence( string $content ): string {
		return "\x30" . self::der_length( strlen( $content ) ) . $content;
	}

	/** A positive ASN.1 INTEGER from big-endian unsigned bytes. */
	private static function der_integer( string $bytes ): string {
		$bytes = ltrim( $bytes, "\0" );
		if ( '' === $bytes || ord( $bytes[0] ) > 0x7f ) {
			$bytes = "\0" . $bytes;
		}
		return "\x02" . self::der_length( strlen( $bytes ) ) . $bytes;
	}
}
