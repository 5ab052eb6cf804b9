// A stand-in for how nodebb-plugin-session-sharing (github.com/julianlam/nodebb-plugin-session-sharing,
// library.js) turns a verified shared-cookie payload into a forum user, copied step for step:
//
//   plugin.findUser(payload):
//     id    = payload[parent]?.[settings['payload:id']]     (default claim name `id`)
//     email = payload[parent]?.[settings['payload:email']]  (default claim name `email`)
//     uid      = <settings.name>:uid lookup of id    (a sorted set since its hash_to_zset upgrade;
//                                                    a hash before — same lookup either way)
//     mergeUid = user.getUidByEmail(email)          (NodeBB: db.sortedSetScore('email:uid', email.toLowerCase()))
//     if uid and user.exists(uid)                    → sign in as uid
//     else if email and mergeUid                     → "Found user via their email, associating this id
//                                                      with their NodeBB account": <name>:uid[id] = mergeUid,
//                                                      sign in as mergeUid
//     else                                           → plugin.createUser(payload): a new forum user
//
// Only NodeBB's database (two sorted sets) and user.create/exists are faked. This is the lookup
// that makes an unverified email dangerous: whoever holds a cookie with the forum admin's
// email is signed in as the forum admin.

/** The forum's side: its users and the two indexes the plugin reads. */
export interface Forum {
  /** `email:uid`: lower-cased email → uid, kept by NodeBB for every user with an email. */
  emailUid: Map<string, number>;
  /** `<settings.name>:uid`: remote id (the cookie's `id`) → uid, written by the plugin. */
  remoteUid: Map<string, number>;
  users: Map<number, { username: string; email: string | null }>;
  log: string[];
}

/** A forum with one administrator (uid 1) who registered with `adminEmail`. */
export function createForum(adminEmail: string): Forum {
  const forum: Forum = { emailUid: new Map(), remoteUid: new Map(), users: new Map(), log: [] };
  forum.users.set(1, { username: 'admin', email: adminEmail });
  forum.emailUid.set(adminEmail.toLowerCase(), 1);
  return forum;
}

/** Settings of the plugin that matter here (defaults as in library.js). */
export interface SessionSharingSettings {
  'payload:id'?: string;
  'payload:email'?: string;
  'payload:username'?: string;
  'payload:parent'?: string;
}

/** plugin.findUser, as described above: the uid the bearer of `payload` is signed in as. */
export function findUser(forum: Forum, payload: Record<string, unknown>, settings: SessionSharingSettings = {}): number {
  const parent = settings['payload:parent'];
  const source = (parent ? payload[parent] : payload) as Record<string, unknown>;
  const id = source[settings['payload:id'] ?? 'id'] as string | undefined;
  const email = source[settings['payload:email'] ?? 'email'] as string | undefined;
  const username = source[settings['payload:username'] ?? 'username'] as string | undefined;
  // plugin.verifyToken: an id and a username (or names) are required.
  if (!id || !username) throw new Error('payload-invalid');
  const uid = forum.remoteUid.get(String(id));
  // user.getUidByEmail lower-cases; a missing email looks up nothing.
  const mergeUid = typeof email === 'string' ? forum.emailUid.get(email.toLowerCase()) : undefined;
  if (uid !== undefined && forum.users.has(uid)) return uid;
  if (email && email.length && mergeUid !== undefined) {
    forum.log.push(`[session-sharing] Found user via their email, associating this id (${id}) with their NodeBB account`);
    forum.remoteUid.set(String(id), mergeUid);
    return mergeUid;
  }
  // plugin.createUser: a fresh forum account (NodeBB refuses a taken email; none is taken here).
  const created = Math.max(...forum.users.keys()) + 1;
  forum.users.set(created, { username, email: email ?? null });
  if (email) forum.emailUid.set(email.toLowerCase(), created);
  forum.remoteUid.set(String(id), created);
  return created;
}
