// A small node:http app that uses Tessera only through the installed tarballs (@tessera/sdk):
// the same four things as express-app.mjs, with withSession and the plain back-channel
// handler. Run by test/packaging/tarballs.test.ts. Env: TESSERA_URL, CLIENT_ID, CLIENT_SECRET.
import { createServer } from 'node:http';
import { createTessera } from '@tessera/sdk';
import { withSession } from '@tessera/sdk/node';
import { createBackchannelHandler, createBackchannelReceiver } from '@tessera/sdk/backchannel';

const tessera = createTessera({ issuer: process.env.TESSERA_URL, clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET });
await tessera.start();
/** @type {Array<{ sid?: string, sub?: string }>} */
const logouts = [];
const backchannel = createBackchannelHandler(createBackchannelReceiver({ tessera, onLogout: ({ sid, sub }) => void logouts.push({ sid, sub }) }));
const me = withSession(tessera, (req, res) => json(res, 200, { sub: req.tessera.sub, sid: req.tessera.sid }));

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
async function text(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

const server = createServer(async (req, res) => {
  const route = `${req.method} ${new URL(req.url ?? '/', 'http://app').pathname}`;
  try {
    if (route === 'GET /me') return me(req, res);
    if (route === 'POST /backchannel-logout') return backchannel(req, res);
    if (route === 'GET /logouts') return json(res, 200, logouts);
    if (route === 'POST /signin') {
      const { accessToken, sid } = await tessera.exchange(await text(req));
      return json(res, 200, { accessToken, sid });
    }
    if (route === 'POST /signout') {
      await tessera.logout(await text(req));
      return void res.writeHead(204).end();
    }
    json(res, 404, { error: 'NOT_FOUND', message: route });
  } catch (error) {
    json(res, 500, { error: 'INTERNAL', message: String(error) });
  }
});
server.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => {
  tessera.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
