<?php
/**
 * Plugin Name:       Tessera Sign-in and Logout Everywhere
 * Description:       Sign in through a Tessera session authority (OpenID Connect), and end the session everywhere: logging out of WordPress ends the Tessera session in every app, and a logout anywhere else ends the WordPress session (OpenID Connect Back-Channel Logout).
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.2
 * Author:            Tessera
 * License:           MIT
 * License URI:       https://opensource.org/licenses/MIT
 * Text Domain:       tessera
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

define( 'TESSERA_PLUGIN_VERSION', '0.1.0' );
define( 'TESSERA_PLUGIN_FILE', __FILE__ );

require_once __DIR__ . '/includes/class-tessera-log.php';
require_once __DIR__ . '/includes/class-tessera-settings.php';
require_once __DIR__ . '/includes/class-tessera-http.php';
require_once __DIR__ . '/includes/class-tessera-jwt.php';
require_once __DIR__ . '/includes/class-tessera-provider.php';
require_once __DIR__ . '/includes/class-tessera-sessions.php';
require_once __DIR__ . '/includes/class-tessera-replay.php';
require_once __DIR__ . '/includes/class-tessera-users.php';
require_once __DIR__ . '/includes/class-tessera-shared-cookie.php';
require_once __DIR__ . '/includes/class-tessera-sign-in.php';
require_once __DIR__ . '/includes/class-tessera-logout.php';
require_once __DIR__ . '/includes/class-tessera-backchannel.php';
require_once __DIR__ . '/includes/class-tessera-admin.php';

register_activation_hook( __FILE__, array( 'Tessera_Replay', 'install' ) );

Tessera_Sessions::register();
Tessera_Sign_In::register();
Tessera_Logout::register();
Tessera_Backchannel::register();
Tessera_Admin::register();
