import type { Command } from './command.js';
import { formatTime, printable } from './output.js';

/**
 * `tessera admin-token create`: a bearer token for the admin API (/admin/api). Only its
 * hash is stored; the token is printed once.
 *
 * @example
 * ```sh
 * tessera admin-token create --label "ops laptop"
 * ```
 */
export const adminTokenCommands: Command[] = [
  {
    path: ['admin-token', 'create'],
    summary: 'Create an admin API token; prints it only this once.',
    notes: ['Use it as: Authorization: Bearer <token> on /admin/api/… requests.'],
    options: { label: { type: 'string', value: 'LABEL', help: 'What the token is for (kept in the audit trail)' } },
    async run(ctx, args) {
      const authority = await ctx.authority();
      const label = args.string('label') ?? `created with the CLI at ${formatTime(Date.now())}`;
      const token = await authority.admin.createAdminToken(label);
      const once = 'The token is shown only this once: store it now (only its hash is kept).';
      if (args.flag('json')) {
        ctx.json({ token, label });
        ctx.note(once);
        return;
      }
      ctx.out(`Created admin token "${printable(label)}".`);
      ctx.out(`  token:  ${token}`);
      ctx.out(once);
      ctx.out(`Use it as: Authorization: Bearer <token> on ${ctx.config().issuer}/admin/api/…`);
    },
  },
];
