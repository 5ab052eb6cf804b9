'use strict';

/**
 * action:middleware.pageView — tells Tessera that the Tessera session behind a NodeBB
 * session is in use, so that a person who only uses the forum is not signed out everywhere
 * at Tessera's idle timeout (`session.idleTimeoutSeconds`): the forum never presents the
 * session token, which is what otherwise counts as use.
 *
 * NodeBB fires the hook from `middleware.pageView` (src/middleware/index.js) after the page
 * was handed on (`next()`), for page routes and their `/api/…` twins (ajaxify navigation).
 * At most once per `activityMinutes` (default 5; 0 turns it off) per Tessera session, across
 * every NodeBB process (an atomic claim in NodeBB's database, `tessera:activity:<sid>`),
 * and never on the request path: the call runs in the background, its failure is logged.
 *
 * @example
 * // plugin.json: { "hook": "action:middleware.pageView", "method": "reportActivity" }
 */

const { nodebb } = require('./nodebb');
const { readSettings } = require('./settings');
const { claimOnce } = require('./ended-sessions');
const { linkOfRequest, linkSession, forgetKnownLinks } = require('./local-sessions');
const { callTessera } = require('./tessera-api');

const LOG = '[plugins/tessera]';
// This process's own memory of recent reports, so that most page views cost no database call.
const recent = new Map();
const MAX_RECENT = 10_000;

async function report(modules, settings, sid, now) {
	const until = now + settings.activityMs;
	recent.set(sid, until);
	if (recent.size > MAX_RECENT) {
		for (const [key, at] of recent) if (at <= now) recent.delete(key);
		if (recent.size > MAX_RECENT) recent.clear();
	}
	// Another NodeBB process may have reported it within the interval.
	if (!(await claimOnce(modules.db, `tessera:activity:${sid}`, until))) return 'skipped';
	const { status, code } = await callTessera(settings, 'POST', `/api/v1/sessions/${encodeURIComponent(sid)}/activity`);
	if (status === 204) return 'reported';
	// 404: the session ended, expired or the forum left it; the back-channel logout (or the
	// shared cookie's absence) takes care of the forum session.
	modules.winston.verbose(`${LOG} activity for Tessera session ${sid}: HTTP ${status}${code ? ` ${code}` : ''}`);
	return `http-${status}`;
}

/** The hook. Returns the background report's promise (for tests), or null. */
async function reportActivity(data) {
	const req = data && data.req;
	if (!req || !req.loggedIn) return null;
	const modules = nodebb();
	// The NodeBB session's Tessera session (lib/local-sessions.js), remembered in this process.
	let link = await linkOfRequest(modules, req).catch(() => null);
	// Not recorded yet: NodeBB does not wait for action:user.loggedIn, so the first page view
	// after a cookie login can come before the hook's write. Record it now (the same checks).
	if (!link && req.cookies && Object.keys(req.cookies).length) {
		const linked = await linkSession(modules, { uid: req.uid, req }).catch(() => false);
		if (linked) link = await linkOfRequest(modules, req).catch(() => null);
	}
	if (!link) return null;
	const now = Date.now();
	if ((recent.get(link.sid) || 0) > now) return null;
	const configured = await readSettings(modules.meta).catch(() => ({ ok: false }));
	if (!configured.ok || !configured.settings.clientSecret || configured.settings.activityMs === 0) return null;
	const done = report(modules, configured.settings, link.sid, now).catch((error) => {
		modules.winston.warn(`${LOG} activity for Tessera session ${link.sid} not reported: ${error && error.message ? error.message : error}`);
		return 'failed';
	});
	return { done };
}

/** Forgets this process's memory of recent reports (tests). */
function forgetRecentActivity() {
	recent.clear();
	forgetKnownLinks();
}

module.exports = { reportActivity, forgetRecentActivity };
