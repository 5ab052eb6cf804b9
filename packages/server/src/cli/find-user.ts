import { TesseraError, type Authority, type UserRecord } from '@tessera/core';

/** The help text of every option that names a user. */
export const USER_REF_HELP = 'The user: id (usr_…), username or email';

/**
 * The user an operator named on the command line: by id first, then by username or email
 * (case-insensitive, as at the login page). An id wins over a login, so a user whose id
 * happens to be another user's name is still reachable by id — the id is the unambiguous
 * form and is what `--json` output and the admin API print.
 *
 * @example
 * ```ts
 * const user = await findNamedUser(authority, args.need('user')); // 'usr_…', 'alice' or 'alice@example.com'
 * ```
 */
export async function findNamedUser(authority: Authority, ref: string): Promise<UserRecord> {
  const store = authority.deps.store;
  const user = (await store.findUserById(ref)) ?? (await store.findUserByLogin(ref));
  if (!user) throw new TesseraError('USER_NOT_FOUND', `no such user "${ref}" (give an id like usr_…, a username or an email)`);
  return user;
}
