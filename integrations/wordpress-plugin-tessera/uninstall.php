<?php
/**
 * Removes everything the plugin stored: its options, transients, the replay table and the
 * Tessera user ids in user meta. WordPress' own session rows are left as they are (they
 * expire on their own).
 *
 * @package Tessera
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

require_once __DIR__ . '/includes/class-tessera-replay.php';

delete_option( 'tessera_settings' );
delete_option( 'tessera_db_version' );
delete_transient( 'tessera_discovery' );
delete_transient( 'tessera_jwks' );
delete_transient( 'tessera_jwks_refetched' );
delete_metadata( 'user', 0, 'tessera_sub', '', true );
Tessera_Replay::drop();
