'use strict';

/**
 * The one door into NodeBB. Every NodeBB module this plugin uses is obtained here, at call
 * time, through `load` — `nodebb.require` inside a running forum: NodeBB 4.15 defines the
 * global `nodebb.require` (its require-main.js / nodebb-global.js) and marks
 * `require.main.require` as deprecated; older 4.x forums only have the latter, which is the
 * fallback. Tests replace `load` with a resolver that returns stand-ins, so the rest of the
 * plugin never knows.
 *
 * @example
 * const { nodebb } = require('./nodebb');
 * const { db, user } = nodebb();
 * await user.auth.revokeSession(sessionIds, uid);
 */

function defaultLoad(id) {
	const global = globalThis.nodebb;
	if (global && typeof global.require === 'function') return global.require(id);
	return require.main.require(id);
}
let load = defaultLoad;

/**
 * Replaces the module resolver (for tests); call with no argument to restore NodeBB's.
 *
 * @example
 * setModuleLoader((id) => ({ './src/database': fakeDb, ... })[id]);
 */
function setModuleLoader(resolver) {
	if (resolver !== undefined && typeof resolver !== 'function') {
		throw new TypeError('setModuleLoader: resolver must be a function');
	}
	load = resolver || defaultLoad;
}

/** The NodeBB modules the plugin uses, resolved now (NodeBB's require cache makes this cheap). */
function nodebb() {
	return {
		db: load('./src/database'),
		user: load('./src/user'),
		meta: load('./src/meta'),
		plugins: load('./src/plugins'),
		routeHelpers: load('./src/routes/helpers'),
		nconf: load('nconf'),
		winston: load('winston'),
	};
}

module.exports = { nodebb, setModuleLoader };
