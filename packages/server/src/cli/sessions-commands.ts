import { TesseraError } from '@tessera/core';
import { sessionJson } from '../views.js';
import { explain, UsageError, type Command } from './command.js';
import { findNamedUser, USER_REF_HELP } from './find-user.js';
import { clip, formatTable, formatTime, printable } from './output.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * `tessera sessions list | revoke`: a user's active sessions, and ending one session or
 * many. Ends are written to the revocation log, so every app hears of them, also when a
 * running server shares the database.
 *
 * @example
 * ```sh
 * tessera sessions list --user alice                     # id, username or email
 * tessera sessions revoke --user usr_… --except ses_…   # sign out everywhere else
 * ```
 */
export const sessionsCommands: Command[] = [
  {
    path: ['sessions', 'list'],
    summary: 'List a user\'s active sessions: handle, times, device and the apps that joined.',
    options: { user: { type: 'string', value: 'USER', help: USER_REF_HELP, required: true } },
    async run(ctx, args) {
      const authority = await ctx.authority();
      const user = await findNamedUser(authority, args.need('user'));
      const sessions = await authority.sessions.listUserSessions(user.id);
      if (args.flag('json')) return ctx.json({ sessions: sessions.map((s) => sessionJson(s)) });
      if (sessions.length === 0) return ctx.out(`User ${printable(user.username)} (id ${printable(user.id)}) has no active sessions.`);
      const rows = sessions.map((s) => {
        const apps = s.apps.filter((a) => a.leftAt === null).map((a) => a.clientId);
        return [s.handle, formatTime(s.createdAt), formatTime(s.lastSeenAt), s.ip ?? '-', clip(s.userAgent ?? '-', 48), apps.length === 0 ? '-' : apps.join(',')];
      });
      for (const line of formatTable(['HANDLE', 'CREATED', 'LAST SEEN', 'IP', 'USER AGENT', 'APPS'], rows)) ctx.out(line);
    },
  },
  {
    path: ['sessions', 'revoke'],
    summary: 'End one session (--handle), or a user\'s sessions (--user, optionally only one app\'s part, or all but one).',
    notes: [
      'tessera sessions revoke --handle H                 end session H everywhere',
      'tessera sessions revoke --user USER                  end every session of the user',
      'tessera sessions revoke --user USER --app CLIENT_ID  the app leaves each session; the sessions go on for other apps',
      'tessera sessions revoke --user USER --except H       end every session of the user but H',
      'USER is the user\'s id (usr_…), username or email.',
    ],
    options: {
      handle: { type: 'string', value: 'H', help: 'The session to end' },
      user: { type: 'string', value: 'USER', help: `End this user's sessions (${USER_REF_HELP.replace('The user: ', '')})` },
      app: { type: 'string', value: 'CLIENT_ID', help: 'With --user: end only this app\'s part of each session' },
      except: { type: 'string', value: 'H', help: 'With --user: keep this session' },
    },
    async run(ctx, args) {
      const handle = args.string('handle');
      const userId = args.string('user');
      if ((handle === undefined) === (userId === undefined)) throw new UsageError('give either --handle or --user');
      if (handle !== undefined && (args.string('app') !== undefined || args.string('except') !== undefined)) throw new UsageError('--app and --except go with --user, not --handle');
      const authority = await ctx.authority();
      const options = { actor: 'admin', reason: 'admin_revoked' } as const;

      if (handle !== undefined) {
        const ended = await explain(authority.sessions.revokeSession(handle, options), { SESSION_NOT_FOUND: `no such session "${handle}"` });
        if (args.flag('json')) return ctx.json({ revoked: ended ? [handle] : [] });
        return ctx.out(ended ? `Ended session ${handle}.` : `Session ${handle} had already ended; nothing changed.`);
      }

      const user = await findNamedUser(authority, userId!);
      const clientId = args.string('app');
      if (clientId !== undefined) await explain(authority.apps.getApp(clientId), { APP_NOT_FOUND: `no such app "${clientId}"` });
      const except = args.string('except');
      if (except !== undefined) {
        // A mistyped handle to keep would otherwise end every session, the one meant to
        // stay included: refuse instead.
        const kept = await authority.deps.store.findSessionByHandle(except);
        if (!kept || kept.userId !== user.id || kept.endedAt !== null) throw new TesseraError('SESSION_NOT_FOUND', `no active session "${except}" of user "${user.id}" to keep`);
      }
      const revoked = await authority.sessions.revokeUserSessions(user.id, { clientId, exceptHandle: except }, options);
      if (args.flag('json')) return ctx.json({ revoked });
      const who = `${printable(user.username)} (id ${printable(user.id)})`;
      if (clientId !== undefined) ctx.out(`App ${clientId} left ${plural(revoked.length, 'session')} of user ${who}; those sessions go on for other apps.`);
      else ctx.out(`Ended ${plural(revoked.length, 'session')} of user ${who}${except === undefined ? '' : `; kept ${except}`}.`);
      for (const h of revoked) ctx.out(`  ${h}`);
    },
  },
];
