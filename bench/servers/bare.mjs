// The baseline for the whoami benchmark: a bare node:http server, in its own process, that
// answers every request with the bytes of one real whoami response (sent by the parent over
// IPC as { body: base64, contentType }). No routing, no auth, no store: the cost floor of
// Node's HTTP stack on this machine.
import { createServer } from 'node:http';
import { stopOnParentExit } from '../lib/children.mjs';

process.once('message', ({ body, contentType }) => {
  const bytes = Buffer.from(body, 'base64');
  const headers = { 'content-type': contentType, 'content-length': String(bytes.length) };
  const server = createServer((req, res) => {
    res.writeHead(200, headers);
    res.end(bytes);
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ url: `http://127.0.0.1:${server.address().port}` }));
  stopOnParentExit(() => new Promise((resolve) => server.close(resolve)));
});
