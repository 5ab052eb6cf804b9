'use strict';

/* ACP page module (plugin.json "modules": ../admin/plugins/tessera.js). Loads and saves the
 * form into NodeBB's settings hash `settings:tessera`, read by the plugin with
 * meta.settings.get('tessera'). */
define('admin/plugins/tessera', ['settings', 'alerts'], function (Settings, alerts) {
	var ACP = {};

	ACP.init = function () {
		Settings.load('tessera', $('.tessera-settings'));

		$('#save').on('click', function () {
			Settings.save('tessera', $('.tessera-settings'), function () {
				alerts.alert({
					type: 'success',
					alert_id: 'tessera-saved',
					title: 'Settings saved',
					message: 'They apply to the next logout token; no restart needed.',
					timeout: 5000,
				});
			});
		});
	};

	return ACP;
});
