<?php
/**
 * Removes everything the plugin stored: its options, transients and replay table (on every
 * site of a network), the Tessera user ids in user meta, and the Tessera fields it added to
 * WordPress sessions (the sid, the start time and the ID token, which holds the person's
 * name and address). The sessions themselves stay signed in: uninstalling a plugin must not
 * sign everyone out.
 *
 * @package Tessera
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

require_once __DIR__ . '/includes/class-tessera-replay.php';

/** Removes what the plugin stored for the current site. */
function tessera_uninstall_site(): void {
	global $wpdb;
	delete_option( 'tessera_settings' );
	delete_option( 'tessera_db_version' );
	// Every transient of the plugin (discovery, keys, sign-ins in progress `tessera_state_*`).
	$wpdb->query( "DELETE FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_tessera\\_%' OR option_name LIKE '\\_transient\\_timeout\\_tessera\\_%'" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery -- no API deletes transients by prefix.
	Tessera_Replay::drop();
}

if ( is_multisite() ) {
	// Each site has its own options and table (the plugin may have run on any of them).
	foreach ( get_sites( array( 'fields' => 'ids', 'number' => 0 ) ) as $tessera_site_id ) {
		switch_to_blog( (int) $tessera_site_id );
		tessera_uninstall_site();
		restore_current_blog();
	}
} else {
	tessera_uninstall_site();
}
wp_cache_flush();

// User meta is one table for the whole network.
delete_metadata( 'user', 0, 'tessera_sub', '', true );
$tessera_fields = array_flip( array( 'tessera_sid', 'tessera_sub', 'tessera_id_token', 'tessera_started_ms' ) );
$tessera_users  = get_users(
	array(
		'blog_id'      => 0,
		'fields'       => 'ID',
		'meta_key'     => 'session_tokens', // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- once, at uninstall.
		'meta_value'   => 'tessera_', // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_value
		'meta_compare' => 'LIKE',
	)
);
foreach ( $tessera_users as $tessera_user_id ) {
	$tessera_sessions = get_user_meta( (int) $tessera_user_id, 'session_tokens', true );
	if ( ! is_array( $tessera_sessions ) ) {
		continue;
	}
	foreach ( $tessera_sessions as $tessera_verifier => $tessera_session ) {
		if ( is_array( $tessera_session ) ) {
			$tessera_sessions[ $tessera_verifier ] = array_diff_key( $tessera_session, $tessera_fields );
		}
	}
	update_user_meta( (int) $tessera_user_id, 'session_tokens', $tessera_sessions );
}
