import { UserClaims } from '../schemas.js';
import { userJson } from '../views.js';
import type { Authority, UserRecord } from '@tessera/core';
import { explain, UsageError, type Args, type CliIo, type Command, type OptionSpec } from './command.js';
import { findNamedUser, USER_REF_HELP } from './find-user.js';
import { printable } from './output.js';
import { validateInput } from './validate-input.js';

/** Reads a password piped on stdin; one trailing newline (from `echo`) is not part of it. */
async function readPasswordFromStdin(stdin: CliIo['stdin']): Promise<string> {
  // Reading a password from a terminal would echo it; this flag is for pipes and files.
  if (stdin.isTTY) throw new UsageError('--password-stdin reads a pipe, e.g. printf \'%s\' "$PASSWORD" | tessera users create … --password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `--user` names a user by id, username or email; `--id` (the older spelling) by id only, as before. */
const userOptions: Record<string, OptionSpec> = {
  user: { type: 'string', value: 'USER', help: USER_REF_HELP },
  id: { type: 'string', value: 'ID', help: 'The user, by id only' },
};

async function namedUser(authority: Authority, args: Args): Promise<UserRecord> {
  const user = args.string('user');
  const id = args.string('id');
  if ((user === undefined) === (id === undefined)) throw new UsageError('give either --user or --id');
  if (user !== undefined) return findNamedUser(authority, user);
  return explain(authority.users.getUser(id!), { USER_NOT_FOUND: `no such user "${id}"` });
}

/**
 * `tessera users create | disable | delete`. Disabling and deleting end every session of
 * the user, written to the revocation log like any other logout.
 *
 * @example
 * ```sh
 * printf '%s' "$PW" | tessera users create --username alice --email alice@example.com --password-stdin
 * tessera users disable --user alice        # or --user usr_…, --user alice@example.com
 * ```
 */
export const usersCommands: Command[] = [
  {
    path: ['users', 'create'],
    summary: 'Create a user.',
    notes: ['Prefer --password-stdin: a --password value is visible in the process list and in shell history.', 'Without a password the user cannot use the login page; trusted apps can still start sessions for them.'],
    options: {
      username: { type: 'string', value: 'NAME', help: 'Login name (no spaces)', required: true },
      email: { type: 'string', value: 'EMAIL', help: 'Email address (also accepted as login)' },
      'email-verified': { type: 'boolean', help: 'You checked that the email is this person\'s (default: unverified; only a verified email is shared with other apps)' },
      password: { type: 'string', value: 'PASSWORD', help: 'Password (at least 8 characters)' },
      'password-stdin': { type: 'boolean', help: 'Read the password from stdin' },
      id: { type: 'string', value: 'ID', help: 'User id to use, e.g. the id in your site (default: a random usr_… id)' },
      'first-name': { type: 'string', value: 'NAME', help: 'First name' },
      'last-name': { type: 'string', value: 'NAME', help: 'Last name' },
    },
    async run(ctx, args) {
      if (args.string('password') !== undefined && args.flag('password-stdin')) throw new UsageError('give --password or --password-stdin, not both');
      const password = args.flag('password-stdin') ? await readPasswordFromStdin(ctx.io.stdin) : args.string('password');
      const body: Record<string, string> = { username: args.need('username') };
      for (const [flag, field] of [['id', 'id'], ['email', 'email'], ['first-name', 'first_name'], ['last-name', 'last_name']] as const) {
        const value = args.string(flag);
        if (value !== undefined) body[field] = value;
      }
      if (password !== undefined) body.password = password;
      if (args.flag('email-verified') && body.email === undefined) throw new UsageError('--email-verified needs --email');
      validateInput(UserClaims, body, {
        id: { flag: '--id', expected: 'letters, digits and _ . @ : -' },
        username: { flag: '--username', expected: 'a name without spaces' },
        password: { flag: args.flag('password-stdin') ? 'the password on stdin' : '--password' },
        first_name: { flag: '--first-name' },
        last_name: { flag: '--last-name' },
      });
      const authority = await ctx.authority();
      const user = await explain(
        authority.users.createUser({ id: body.id, username: body.username!, email: body.email, emailVerified: args.flag('email-verified'), password, firstName: body.first_name, lastName: body.last_name }, 'admin'),
        { USER_CONFLICT: `a user with this ${body.id === undefined ? '' : 'id, '}username${body.email === undefined ? '' : ' or email'} exists` },
      );
      if (args.flag('json')) return ctx.json({ user: userJson(user) });
      ctx.out(`Created user ${printable(user.username)} (id ${printable(user.id)}).`);
      if (password === undefined) ctx.out('No password set: this user cannot sign in on the login page.');
    },
  },
  {
    path: ['users', 'verify-email'],
    summary: 'Mark a user\'s email as verified (or, with --unverified, as not verified).',
    notes: ['Only a verified email is given to other apps (the shared session cookie, ID tokens), which may match accounts by it: verify only an address you checked belongs to this person.'],
    options: {
      id: { type: 'string', value: 'ID', help: 'The user', required: true },
      unverified: { type: 'boolean', help: 'Mark the email as not verified' },
    },
    async run(ctx, args) {
      const id = args.need('id');
      const authority = await ctx.authority();
      const { user } = await explain(authority.users.updateUser(id, { emailVerified: !args.flag('unverified') }, 'admin'), { USER_NOT_FOUND: `no such user "${id}"`, INVALID_REQUEST: 'this user has no email to verify' });
      if (args.flag('json')) return ctx.json({ user: userJson(user) });
      ctx.out(`Email of ${printable(user.username)} (id ${printable(user.id)}) is now ${user.emailVerified ? 'verified' : 'not verified'}.`);
    },
  },
  {
    path: ['users', 'disable'],
    summary: 'Disable a user and end all of their sessions.',
    options: userOptions,
    async run(ctx, args) {
      const authority = await ctx.authority();
      const before = await namedUser(authority, args);
      const { user, revoked } = await explain(authority.users.updateUser(before.id, { disabled: true }, 'admin'), { USER_NOT_FOUND: `no such user "${before.id}"` });
      if (args.flag('json')) return ctx.json({ user: userJson(user), revoked });
      ctx.out(`${before.disabled ? 'User was already disabled' : 'Disabled user'} ${printable(user.username)} (id ${printable(user.id)}); ended ${plural(revoked.length, 'session')}.`);
    },
  },
  {
    path: ['users', 'delete'],
    summary: 'Delete a user after ending all of their sessions (the ended sessions stay in the audit trail).',
    options: userOptions,
    async run(ctx, args) {
      const authority = await ctx.authority();
      const { id } = await namedUser(authority, args);
      const revoked = await explain(authority.users.deleteUser(id, 'admin'), { USER_NOT_FOUND: `no such user "${id}"` });
      if (args.flag('json')) return ctx.json({ deleted: id, revoked });
      ctx.out(`Deleted user ${printable(id)}; ended ${plural(revoked.length, 'session')}.`);
    },
  },
];
