<?php
/**
 * Settings → Tessera: issuer, client id and secret, how users are matched, the button label,
 * the optional shared cookie. Through the Settings API: options.php checks the form's nonce
 * (settings_fields) and the manage_options capability.
 *
 * @package Tessera
 */

defined( 'ABSPATH' ) || exit;

/** The settings page. */
final class Tessera_Admin {
	const PAGE = 'tessera';

	public static function register(): void {
		add_action( 'admin_init', array( self::class, 'settings' ) );
		add_action( 'admin_menu', array( self::class, 'menu' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( TESSERA_PLUGIN_FILE ), array( self::class, 'action_links' ) );
	}

	public static function settings(): void {
		register_setting(
			self::PAGE,
			Tessera_Settings::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( 'Tessera_Settings', 'sanitize' ),
				'show_in_rest'      => false,
			)
		);
	}

	public static function menu(): void {
		add_options_page( __( 'Tessera', 'tessera' ), __( 'Tessera', 'tessera' ), 'manage_options', self::PAGE, array( self::class, 'render' ) );
	}

	public static function action_links( array $links ): array {
		array_unshift( $links, '<a href="' . esc_url( admin_url( 'options-general.php?page=' . self::PAGE ) ) . '">' . esc_html__( 'Settings', 'tessera' ) . '</a>' );
		return $links;
	}

	/** The page. Every value is escaped for its context; the secret is never printed. */
	public static function render(): void {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'You do not have permission to change these settings.', 'tessera' ), '', array( 'response' => 403 ) );
		}
		$s    = Tessera_Settings::all();
		$name = Tessera_Settings::OPTION;
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'Tessera', 'tessera' ); ?></h1>
			<p><?php esc_html_e( 'Register this site at Tessera as an OpenID Connect client with these exact URLs:', 'tessera' ); ?></p>
			<table class="widefat striped" style="max-width:60em">
				<tr><th scope="row"><?php esc_html_e( 'Redirect URI', 'tessera' ); ?></th><td><code><?php echo esc_html( Tessera_Settings::redirect_uri() ); ?></code></td></tr>
				<tr><th scope="row"><?php esc_html_e( 'Post-logout redirect URI', 'tessera' ); ?></th><td><code><?php echo esc_html( Tessera_Settings::post_logout_redirect_uri() ); ?></code></td></tr>
				<tr><th scope="row"><?php esc_html_e( 'Back-channel logout URI', 'tessera' ); ?></th><td><code><?php echo esc_html( Tessera_Settings::backchannel_uri() ); ?></code></td></tr>
			</table>
			<form method="post" action="options.php">
				<?php settings_fields( self::PAGE ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="tessera-issuer"><?php esc_html_e( 'Issuer URL', 'tessera' ); ?></label></th>
						<td><input type="url" class="regular-text" id="tessera-issuer" name="<?php echo esc_attr( $name ); ?>[issuer]" value="<?php echo esc_attr( $s['issuer'] ); ?>" placeholder="https://auth.example.com" /></td>
					</tr>
					<tr>
						<th scope="row"><label for="tessera-client-id"><?php esc_html_e( 'Client ID', 'tessera' ); ?></label></th>
						<td><input type="text" class="regular-text" id="tessera-client-id" name="<?php echo esc_attr( $name ); ?>[client_id]" value="<?php echo esc_attr( $s['client_id'] ); ?>" autocomplete="off" /></td>
					</tr>
					<tr>
						<th scope="row"><label for="tessera-client-secret"><?php esc_html_e( 'Client secret', 'tessera' ); ?></label></th>
						<td>
							<input type="password" class="regular-text" id="tessera-client-secret" name="<?php echo esc_attr( $name ); ?>[client_secret]" value="" autocomplete="new-password" />
							<p class="description"><?php echo '' === $s['client_secret'] ? esc_html__( 'Not set.', 'tessera' ) : esc_html__( 'Set. Leave empty to keep it.', 'tessera' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Match WordPress users', 'tessera' ); ?></th>
						<td>
							<label><input type="radio" name="<?php echo esc_attr( $name ); ?>[match]" value="email" <?php checked( $s['match'], 'email' ); ?> /> <?php esc_html_e( 'by verified email address (then by Tessera user id once linked)', 'tessera' ); ?></label><br />
							<label><input type="radio" name="<?php echo esc_attr( $name ); ?>[match]" value="sub" <?php checked( $s['match'], 'sub' ); ?> /> <?php esc_html_e( 'by Tessera user id only (stored in user meta)', 'tessera' ); ?></label><br />
							<label><input type="checkbox" name="<?php echo esc_attr( $name ); ?>[create_users]" value="1" <?php checked( (bool) $s['create_users'] ); ?> /> <?php esc_html_e( 'Create a WordPress account when none matches', 'tessera' ); ?></label>
						</td>
					</tr>
					<tr>
						<th scope="row"><label for="tessera-button-label"><?php esc_html_e( 'Button label', 'tessera' ); ?></label></th>
						<td><input type="text" class="regular-text" id="tessera-button-label" name="<?php echo esc_attr( $name ); ?>[button_label]" value="<?php echo esc_attr( $s['button_label'] ); ?>" /></td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Shared cookie (optional)', 'tessera' ); ?></th>
						<td>
							<p class="description"><?php esc_html_e( 'Only when Tessera does not set the parent-domain cookie for nodebb-plugin-session-sharing itself.', 'tessera' ); ?></p>
							<label><?php esc_html_e( 'Name', 'tessera' ); ?> <input type="text" name="<?php echo esc_attr( $name ); ?>[shared_cookie_name]" value="<?php echo esc_attr( $s['shared_cookie_name'] ); ?>" /></label>
							<label><?php esc_html_e( 'Domain', 'tessera' ); ?> <input type="text" name="<?php echo esc_attr( $name ); ?>[shared_cookie_domain]" value="<?php echo esc_attr( $s['shared_cookie_domain'] ); ?>" placeholder=".example.com" /></label>
							<label><?php esc_html_e( 'Secret', 'tessera' ); ?> <input type="password" name="<?php echo esc_attr( $name ); ?>[shared_cookie_secret]" value="" autocomplete="new-password" /></label>
							<p class="description"><?php echo '' === $s['shared_cookie_secret'] ? esc_html__( 'Secret not set.', 'tessera' ) : esc_html__( 'Secret set. Leave empty to keep it.', 'tessera' ); ?></p>
						</td>
					</tr>
				</table>
				<?php submit_button(); ?>
			</form>
		</div>
		<?php
	}
}
