'use strict';

/**
 * Tessera user id (`sub`) → NodeBB uid.
 *
 * nodebb-plugin-session-sharing keeps its own mapping, and this plugin reads it in place:
 * a sorted set named `<name>:uid` (`name` is session-sharing's "Base Name" setting, default
 * `appId`) whose members are the remote ids and whose scores are the uids. See, in
 * julianlam/nodebb-plugin-session-sharing, library.js: `plugin.createUser` stores it with
 * `db.sortedSetAdd(plugin.settings.name + ':uid', uid, userData.id)` and `plugin.getUser`
 * reads it with `db.sortedSetScore(plugin.settings.name + ':uid', remoteId)`; the upgrade
 * upgrades/session_sharing_hash_to_zset.js (2017) moved it there from the older hash of the
 * same name. With Tessera's shared cookie the remote id is the cookie's `id` claim, which
 * Tessera fills with the user id — the `sub` of the logout token.
 *
 * nodebb-plugin-sso-oauth2-multiple (sign-in through Tessera's OpenID Connect provider) keeps
 * its mapping in the hash `<strategy>Id:uid` (field: the remote id — with the strategy's
 * "User ID property" set to `sub`, the Tessera user id —, value: the uid; `OAuth.login` in its
 * library.js: `db.setObjectField(`${payload.name}Id:uid`, payload.oAuthid, uid)`); the plugin
 * reads it in place when that plugin is active, for the strategy named by the setting
 * `oauth2Strategy` (default `tessera`).
 *
 * Without either, the plugin keeps the same shape as session-sharing's under its own key `tessera:uid`
 * (member: sub, score: uid), filled by `linkUser` — from another plugin, a script, or the
 * admin API route (see README). A sorted set rather than a hash so that the reverse lookup
 * (uid → subs) needed when a NodeBB account is deleted is one indexed query.
 *
 * @example
 * const found = await resolveUid(nodebb(), settings, 'usr_123');
 * // { uid: 42, source: 'session-sharing' } or null
 */

const OWN_MAPPING_KEY = 'tessera:uid';
const SESSION_SHARING_ID = 'nodebb-plugin-session-sharing';
const OAUTH2_MULTIPLE_ID = 'nodebb-plugin-sso-oauth2-multiple';

function toUid(score) {
	const uid = Number.parseInt(score, 10);
	return Number.isSafeInteger(uid) && uid > 0 ? uid : null;
}

/** The name of session-sharing's mapping set when that plugin is active, else null. */
async function sessionSharingMappingKey({ plugins, meta }, settings) {
	if (!(await plugins.isActive(SESSION_SHARING_ID))) return null;
	if (settings.sessionSharingName) return `${settings.sessionSharingName}:uid`;
	const sharing = (await meta.settings.get('session-sharing')) || {};
	// session-sharing drops empty settings and falls back to its default 'appId' (reloadSettings).
	const name = typeof sharing.name === 'string' && sharing.name.trim() ? sharing.name.trim() : 'appId';
	return `${name}:uid`;
}

/** The name of sso-oauth2-multiple's mapping hash for the Tessera strategy when that plugin is active, else null. */
async function oauth2MappingKey({ plugins }, settings) {
	if (!settings.oauth2Strategy || !(await plugins.isActive(OAUTH2_MULTIPLE_ID))) return null;
	return `${settings.oauth2Strategy}Id:uid`;
}

/**
 * Finds the uid for a Tessera user id: session-sharing's mapping first when that plugin is
 * active, then sso-oauth2-multiple's (same condition), then this plugin's own. Null when none
 * knows the user.
 */
async function resolveUid(modules, settings, sub) {
	const { db } = modules;
	const sharingKey = await sessionSharingMappingKey(modules, settings);
	if (sharingKey) {
		const uid = toUid(await db.sortedSetScore(sharingKey, sub));
		if (uid) return { uid, source: 'session-sharing' };
	}
	const oauth2Key = await oauth2MappingKey(modules, settings);
	if (oauth2Key) {
		const uid = toUid(await db.getObjectField(oauth2Key, sub));
		if (uid) return { uid, source: 'sso-oauth2-multiple' };
	}
	const uid = toUid(await db.sortedSetScore(OWN_MAPPING_KEY, sub));
	return uid ? { uid, source: 'tessera' } : null;
}

/**
 * Records that Tessera user `sub` is NodeBB user `uid` in the plugin's own mapping.
 *
 * @example
 * await nodebb.require('nodebb-plugin-tessera').linkUser('usr_123', 42);
 */
async function linkUser({ db }, sub, uid) {
	if (typeof sub !== 'string' || sub === '' || sub.length > 256) throw new TypeError('linkUser: sub must be a non-empty string (at most 256 characters)');
	const checked = toUid(uid);
	if (checked === null || String(checked) !== String(uid).trim()) throw new TypeError('linkUser: uid must be a positive integer');
	await db.sortedSetAdd(OWN_MAPPING_KEY, checked, sub);
}

/** Removes `sub` from the plugin's own mapping. */
async function unlinkUser({ db }, sub) {
	if (typeof sub !== 'string' || sub === '') throw new TypeError('unlinkUser: sub must be a non-empty string');
	await db.sortedSetRemove(OWN_MAPPING_KEY, sub);
}

/** Removes every sub mapped to `uid` in the plugin's own mapping (the account is gone). */
async function unlinkUid({ db }, uid) {
	const checked = toUid(uid);
	if (checked === null) return [];
	const subs = await db.getSortedSetRangeByScore(OWN_MAPPING_KEY, 0, -1, checked, checked);
	if (subs.length) await db.sortedSetRemove(OWN_MAPPING_KEY, subs);
	return subs;
}

module.exports = { resolveUid, linkUser, unlinkUser, unlinkUid, toUid, OWN_MAPPING_KEY, SESSION_SHARING_ID, OAUTH2_MULTIPLE_ID };
