// A small Express app that uses Tessera only through the installed tarballs (@tessera/sdk):
// it joins a Tessera session, guards /me with the SDK's middleware, signs out server to
// server, and receives back-channel logout. Run by test/packaging/tarballs.test.ts in a
// project outside the workspace. Env: TESSERA_URL, CLIENT_ID, CLIENT_SECRET.
import express from 'express';
import { createTessera } from '@tessera/sdk';
import { authenticate } from '@tessera/sdk/express';
import { createBackchannelReceiver, createExpressBackchannelHandler } from '@tessera/sdk/backchannel';

const tessera = createTessera({ issuer: process.env.TESSERA_URL, clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET });
await tessera.start();
/** @type {Array<{ sid?: string, sub?: string }>} */
const logouts = [];
const receiver = createBackchannelReceiver({ tessera, onLogout: ({ sid, sub }) => void logouts.push({ sid, sub }) });

const app = express();
// The session token the user got at Tessera's login page → this app's access token.
app.post('/signin', express.text(), async (req, res) => {
  const { accessToken, sid } = await tessera.exchange(req.body);
  res.json({ accessToken, sid });
});
app.get('/me', authenticate(tessera), (req, res) => res.json({ sub: req.tessera.sub, sid: req.tessera.sid }));
app.post('/signout', express.text(), async (req, res) => {
  await tessera.logout(req.body); // the whole session, at every app
  res.status(204).end();
});
app.post('/backchannel-logout', express.urlencoded({ extended: false }), createExpressBackchannelHandler(receiver));
app.get('/logouts', (_req, res) => res.json(logouts));

const server = app.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => {
  tessera.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
