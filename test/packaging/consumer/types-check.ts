// Compiled with `tsc --noEmit` in the consumer project: the tarballs' `exports` must lead
// TypeScript (NodeNext resolution, no workspace condition) to their declarations.
import { createTessera, isTesseraSdkError, type TesseraSession } from '@tessera/sdk';
import { withSession } from '@tessera/sdk/node';
import { createBackchannelReceiver } from '@tessera/sdk/backchannel';
import { createAuthFetch, logout } from '@tessera/browser';

const tessera = createTessera({ issuer: 'http://127.0.0.1:4000', clientId: 'app', clientSecret: 'secret' });
const handler = withSession(tessera, (req, res) => {
  const session: TesseraSession = req.tessera;
  res.end(session.sub);
});
createBackchannelReceiver({ tessera, onLogout: ({ sid }) => void sid });
let accessToken = '';
const authFetch = createAuthFetch({ refresh: async () => 'next', getAccessToken: () => accessToken, setAccessToken: (t: string) => void (accessToken = t) });
export const used = [handler, authFetch, logout, isTesseraSdkError] as const;
// @ts-expect-error: a misspelt option must be a type error, or the types are `any`.
createTessera({ issuer: 'x', clientId: 'a', clientSecret: 'b', clockToleranceSecond: 5 });
