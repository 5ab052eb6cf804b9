<?php
/**
 * The logout tokens already seen (`jti`), kept in the database until they expire: a logout
 * token presented twice is refused (OIDC Back-Channel Logout 1.0 §2.6 step 9 suggests
 * it). Only a hash of the jti is stored, with the time after which it cannot be accepted
 * anyway (its expiry), so the table stays small.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The replay table. */
final class Tessera_Replay {
	const DB_VERSION = '1';

	public static function table(): string {
		global $wpdb;
		return $wpdb->prefix . 'tessera_jti';
	}

	/** Creates (or upgrades) the table; the activation hook. */
	public static function install(): void {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE {$table} (
  jti_hash char(64) NOT NULL,
  expires_at bigint(20) unsigned NOT NULL,
  PRIMARY KEY  (jti_hash),
  KEY expires_at (expires_at)
) {$charset};"
		);
		update_option( 'tessera_db_version', self::DB_VERSION, false );
	}

	/**
	 * Records a jti; false when it was already recorded (a replay).
	 *
	 * @param string $jti        The token's jti.
	 * @param int    $expires_at Unix time after which the token is refused anyway.
	 * @throws Tessera_Token_Error 'unavailable' when the table cannot be written: the token was
	 *                             not refused, so the answer is 503 and Tessera retries (a
	 *                             database failure must not pass for a replay, a 400).
	 */
	public static function claim( string $jti, int $expires_at ): bool {
		global $wpdb;
		if ( get_option( 'tessera_db_version' ) !== self::DB_VERSION ) {
			self::install();
		}
		$inserted = self::record( $jti, $expires_at );
		if ( false === $inserted ) {
			// The table is gone while the option says it exists (a partial restore, a table
			// dropped by hand): create it again and try once more.
			self::install();
			$inserted = self::record( $jti, $expires_at );
		}
		if ( false === $inserted ) {
			throw new Tessera_Token_Error( 'unavailable', 'the replay table cannot be written: ' . $wpdb->last_error );
		}
		return 1 === $inserted;
	}

	/** Deletes expired rows and inserts the jti's hash; rows inserted (0: already there), false on a database error. */
	private static function record( string $jti, int $expires_at ) {
		global $wpdb;
		$table = self::table();
		// A failure is handled by the caller (and logged there): not printed here as well.
		$suppress = $wpdb->suppress_errors( true );
		// Expired entries go first: their tokens fail the time checks anyway.
		$wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE expires_at < %d", time() ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- a table of its own, name from $wpdb->prefix.
		// The primary key makes the check and the record one atomic step: of two deliveries of
		// the same token at the same moment, exactly one inserts the row.
		$inserted = $wpdb->query( $wpdb->prepare( "INSERT IGNORE INTO {$table} (jti_hash, expires_at) VALUES (%s, %d)", hash( 'sha256', $jti ), $expires_at ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->suppress_errors( $suppress );
		return $inserted;
	}

	/** Drops the table (uninstall). */
	public static function drop(): void {
		global $wpdb;
		$wpdb->query( 'DROP TABLE IF EXISTS ' . self::table() ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.NotPrepared
	}
}
