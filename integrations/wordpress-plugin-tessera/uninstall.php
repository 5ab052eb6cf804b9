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
// Every transient of the plugin (discovery, keys, sign-ins in progress `tessera_state_*`).
global $wpdb;
$wpdb->query( "DELETE FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_tessera\\_%' OR option_name LIKE '\\_transient\\_timeout\\_tessera\\_%'" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery -- no API deletes transients by prefix.
wp_cache_flush();
delete_metadata( 'user', 0, 'tessera_sub', '', true );
Tessera_Replay::drop();
