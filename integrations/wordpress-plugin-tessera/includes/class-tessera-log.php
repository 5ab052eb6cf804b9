<?php
/**
 * The plugin's log lines (PHP's error log, prefixed "[tessera]"). docs/wordpress.md lists
 * each line and what it means. No token, secret, code or cookie is ever written here:
 * only claims that identify (sub, sid, jti hash) and what was decided.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** Writes one log line. */
final class Tessera_Log {
	/**
	 * Logs `$event: $detail`.
	 *
	 * @param string $event  A stable event name (e.g. "backchannel.refused").
	 * @param string $detail Free text; never a secret.
	 */
	public static function write( string $event, string $detail = '' ): void {
		// Newlines are stripped so that nothing a caller sent can forge a second log line.
		$line = '[tessera] ' . $event . ( '' === $detail ? '' : ' ' . str_replace( array( "\r", "\n" ), ' ', $detail ) );
		error_log( $line ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log -- the operator's log is the point.
	}
}
