'use strict';

/**
 * Administrator routes on NodeBB's write API, to fill the plugin's own sub → uid mapping
 * without code (used when nodebb-plugin-session-sharing is not installed). Mounted by NodeBB
 * under /api/v3/plugins, so with a NodeBB API token (ACP > Settings > API Access):
 *
 *   GET    /api/v3/plugins/tessera/links/:sub   → { sub, uid, source }  (404 if unknown)
 *   PUT    /api/v3/plugins/tessera/links/:sub   { "uid": 42 } → { sub, uid }
 *   DELETE /api/v3/plugins/tessera/links/:sub   → {}
 *
 * GET answers with the mapping a logout would use (session-sharing's first), so it also
 * checks where a logout for that Tessera user would land.
 *
 * @example
 * curl -X PUT https://forum.example.com/api/v3/plugins/tessera/links/usr_123 \
 *   -H "Authorization: Bearer $NODEBB_TOKEN" -H 'Content-Type: application/json' -d '{"uid":42}'
 */

const { nodebb } = require('./nodebb');
const { readSettings } = require('./settings');
const { resolveUid, linkUser, unlinkUser, toUid } = require('./id-mapping');

async function isAdmin(modules, req) {
	return req.uid > 0 && (await modules.user.isAdministrator(req.uid));
}

function createAdminApiControllers(helpers) {
	async function guard(req, res) {
		const modules = nodebb();
		if (!(await isAdmin(modules, req))) {
			await helpers.formatApiResponse(403, res);
			return null;
		}
		return modules;
	}

	return {
		async getLink(req, res) {
			const modules = await guard(req, res);
			if (!modules) return;
			const configured = await readSettings(modules.meta);
			const found = await resolveUid(modules, configured.ok ? configured.settings : { sessionSharingName: '' }, req.params.sub);
			if (!found) return helpers.formatApiResponse(404, res);
			return helpers.formatApiResponse(200, res, { sub: req.params.sub, uid: found.uid, source: found.source });
		},
		async putLink(req, res) {
			const modules = await guard(req, res);
			if (!modules) return;
			const raw = req.body && req.body.uid;
			const uid = toUid(raw);
			if (uid === null || String(uid) !== String(raw).trim()) {
				return helpers.formatApiResponse(400, res, new Error('uid must be a positive integer'));
			}
			if (!(await modules.user.exists(uid))) {
				return helpers.formatApiResponse(400, res, new Error(`no NodeBB user has uid ${uid}`));
			}
			try {
				await linkUser(modules, req.params.sub, uid);
			} catch (error) {
				if (error instanceof TypeError) return helpers.formatApiResponse(400, res, error);
				throw error;
			}
			modules.winston.info(`[plugins/tessera] uid ${req.uid} linked Tessera user ${req.params.sub} to uid ${uid}`);
			return helpers.formatApiResponse(200, res, { sub: req.params.sub, uid });
		},
		async deleteLink(req, res) {
			const modules = await guard(req, res);
			if (!modules) return;
			await unlinkUser(modules, req.params.sub);
			modules.winston.info(`[plugins/tessera] uid ${req.uid} unlinked Tessera user ${req.params.sub}`);
			return helpers.formatApiResponse(200, res, {});
		},
	};
}

module.exports = { createAdminApiControllers };
