'use strict';

/**
 * nodebb-plugin-tessera: ends a user's NodeBB sessions when Tessera sends an OpenID Connect
 * Back-Channel Logout 1.0 logout token to POST /tessera/backchannel-logout, ends the Tessera
 * session when the user logs out of the forum, and tells Tessera the session is in use.
 *
 * Hooks (plugin.json): `static:app.load` → init (routes), `static:api.routes` → admin
 * mapping API, `filter:admin.header.build` → ACP menu entry, `action:user.delete` → mapping
 * clean-up, `action:user.loggedIn` → remember the Tessera session behind a NodeBB session,
 * `static:user.loggedOut` → end the Tessera session, `action:middleware.pageView` → activity
 * and listing a session a login plugin left out of `uid:<uid>:sessions`,
 * and two nodebb-plugin-session-sharing hooks that refuse shared cookies of ended Tessera
 * sessions. Every NodeBB module is reached through lib/nodebb.js.
 *
 * @example
 * // From another NodeBB plugin or a script running inside NodeBB:
 * const tessera = nodebb.require('nodebb-plugin-tessera');
 * await tessera.linkUser('usr_123', 42);
 */

const { nodebb } = require('./lib/nodebb');
const { handleBackchannelLogout } = require('./lib/backchannel-route');
const { createAdminApiControllers } = require('./lib/admin-api');
const { refuseEndedSessionCookie, treatEndedSessionCookieAsGuest } = require('./lib/session-sharing-guard');
const mapping = require('./lib/id-mapping');
const { readSettings } = require('./lib/settings');
const { linkSession } = require('./lib/local-sessions');
const { endTesseraSessionOnForumLogout } = require('./lib/forum-logout');
const { reportActivity } = require('./lib/activity');
const { listUnlistedSession } = require('./lib/session-list');

const BACKCHANNEL_PATH = '/tessera/backchannel-logout';

const plugin = {};

/**
 * static:app.load — adds the back-channel route and the ACP page.
 *
 * The route is added with a bare `router.post`: NodeBB applies CSRF protection per route
 * (`middleware.applyCSRF`, e.g. on /admin/* and POST /compose in src/routes/index.js), not
 * globally, so a plugin route without it accepts Tessera's server-to-server POST, which
 * carries no cookie and no CSRF token. Nothing is lost: the request is authenticated by the
 * logout token's signature, and it acts on no browser session of the caller.
 */
plugin.init = async function init({ router }) {
	const { routeHelpers } = nodebb();
	router.post(BACKCHANNEL_PATH, handleBackchannelLogout);
	routeHelpers.setupAdminPageRoute(router, '/admin/plugins/tessera', [], plugin.renderAdminPage);
};

/** The ACP page (templates/admin/plugins/tessera.tpl): settings and the URL to register. */
plugin.renderAdminPage = async function renderAdminPage(req, res) {
	const { nconf } = nodebb();
	res.render('admin/plugins/tessera', {
		title: 'Tessera',
		backchannelUrl: `${nconf.get('url')}${BACKCHANNEL_PATH}`,
	});
};

/** static:api.routes — administrator routes for the plugin's own sub → uid mapping. */
plugin.addApiRoutes = async function addApiRoutes({ router, middleware, helpers }) {
	const { routeHelpers } = nodebb();
	const controllers = createAdminApiControllers(helpers);
	const guard = [middleware.ensureLoggedIn];
	routeHelpers.setupApiRoute(router, 'get', '/tessera/links/:sub', guard, controllers.getLink);
	routeHelpers.setupApiRoute(router, 'put', '/tessera/links/:sub', guard, controllers.putLink);
	routeHelpers.setupApiRoute(router, 'delete', '/tessera/links/:sub', guard, controllers.deleteLink);
};

/** filter:admin.header.build — ACP > Plugins > Tessera. */
plugin.addAdminNavigation = async function addAdminNavigation(header) {
	header.plugins.push({ route: '/plugins/tessera', icon: 'fa-right-from-bracket', name: 'Tessera' });
	return header;
};

/** action:user.delete — a deleted account keeps no entry in the plugin's own mapping. */
plugin.forgetDeletedUser = async function forgetDeletedUser({ uid }) {
	await mapping.unlinkUid(nodebb(), uid);
};

/**
 * action:user.loggedIn — when session-sharing logged the user in from Tessera's shared
 * cookie, records that cookie's Tessera session for the NodeBB session
 * (`tessera:session:<NodeBB session id>`, lib/local-sessions.js), so that a logout ends
 * exactly the NodeBB sessions of the Tessera sessions it ended. Never fails the login.
 */
plugin.linkTesseraSession = async function linkTesseraSession(data) {
	const modules = nodebb();
	try {
		await linkSession(modules, data || {});
	} catch (error) {
		modules.winston.warn(`[plugins/tessera] could not link the NodeBB session to its Tessera session: ${error && error.message ? error.message : error}`);
	}
};

plugin.endTesseraSessionOnForumLogout = endTesseraSessionOnForumLogout;
plugin.reportActivity = reportActivity;
plugin.listUnlistedSession = listUnlistedSession;
plugin.refuseEndedSessionCookie = refuseEndedSessionCookie;
plugin.treatEndedSessionCookieAsGuest = treatEndedSessionCookieAsGuest;
plugin.handleBackchannelLogout = handleBackchannelLogout;

/**
 * Links Tessera user `sub` to NodeBB user `uid` in the plugin's own mapping (not needed with
 * nodebb-plugin-session-sharing, whose mapping is read directly).
 *
 * @example
 * await nodebb.require('nodebb-plugin-tessera').linkUser('usr_123', 42);
 */
plugin.linkUser = async function linkUser(sub, uid) {
	await mapping.linkUser(nodebb(), sub, uid);
};

/** Removes Tessera user `sub` from the plugin's own mapping. */
plugin.unlinkUser = async function unlinkUser(sub) {
	await mapping.unlinkUser(nodebb(), sub);
};

/**
 * The NodeBB uid a logout for Tessera user `sub` would end, and which mapping gave it.
 *
 * @example
 * await tessera.findUid('usr_123'); // { uid: 42, source: 'session-sharing' } or null
 */
plugin.findUid = async function findUid(sub) {
	const modules = nodebb();
	const configured = await readSettings(modules.meta);
	return mapping.resolveUid(modules, configured.ok ? configured.settings : { sessionSharingName: '' }, sub);
};

module.exports = plugin;
