// The five framework adapters mounted the same way: each route is guarded by `authenticate`
// from the adapter's subpath and answers the verified session as JSON. The shared suite in
// adapters.test.ts runs against every entry of ADAPTERS.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import type { AuthenticateOptions, Tessera, TesseraSession } from '../../src/index.js';
import { authenticate as expressAuth } from '../../src/express.js';
import { authenticate as fastifyAuth } from '../../src/fastify.js';
import { authenticate as honoAuth, type TesseraVariables } from '../../src/hono.js';
import { authenticate as koaAuth } from '../../src/koa.js';
import { withSession } from '../../src/node.js';

export interface Route {
  path: string;
  tessera: Tessera;
  options?: AuthenticateOptions;
}

export interface Mounted {
  url: string;
  close(): Promise<void>;
  /** How many times a route handler ran (it must not for a refused request). */
  handled(): number;
}

export interface Adapter {
  name: string;
  mount(routes: Route[]): Promise<Omit<Mounted, 'handled'>>;
}

let handledCount = 0;
/** What every route handler answers; counts its runs. */
const view = (s: TesseraSession) => {
  handledCount++;
  return { sub: s.sub, sid: s.sid, aud: s.aud, jti: s.jti };
};

/** Mounts `routes` with `adapter`, counting handler runs. */
export async function mountAdapter(adapter: Adapter, routes: Route[]): Promise<Mounted> {
  const mounted = await adapter.mount(routes);
  const base = handledCount;
  return { ...mounted, handled: () => handledCount - base };
}

function listen(server: Server): Promise<Omit<Mounted, 'handled'>> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

export const ADAPTERS: Adapter[] = [
  {
    name: 'express',
    async mount(routes) {
      const app = express();
      for (const r of routes) app.get(r.path, expressAuth(r.tessera, r.options), (req, res) => void res.json(view(req.tessera!)));
      return listen(createServer(app));
    },
  },
  {
    name: 'fastify',
    async mount(routes) {
      const app = Fastify();
      for (const r of routes) app.get(r.path, { onRequest: fastifyAuth(r.tessera, r.options) }, async (request) => view(request.tessera!));
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
    },
  },
  {
    name: 'koa',
    async mount(routes) {
      const app = new Koa();
      const guards = new Map(routes.map((r) => [r.path, koaAuth(r.tessera, r.options)]));
      app.use(async (ctx, next) => {
        const guard = guards.get(ctx.path);
        if (!guard || ctx.method !== 'GET') return void (ctx.status = 404);
        await guard(ctx, async () => {
          ctx.body = view(ctx.state.tessera);
        });
        await next();
      });
      return listen(createServer(app.callback()));
    },
  },
  {
    name: 'hono',
    async mount(routes) {
      const app = new Hono<{ Variables: TesseraVariables }>();
      for (const r of routes) app.get(r.path, honoAuth(r.tessera, r.options), (c) => c.json(view(c.get('tessera'))));
      return listen(createAdaptorServer({ fetch: app.fetch }) as Server);
    },
  },
  {
    name: 'node',
    async mount(routes) {
      const handlers = new Map(routes.map((r) => [r.path, withSession(r.tessera, (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view(req.tessera)));
      }, r.options)]));
      return listen(createServer((req, res) => {
        const handler = handlers.get(new URL(req.url ?? '/', 'http://x').pathname);
        if (!handler || req.method !== 'GET') return void res.writeHead(404).end();
        handler(req, res);
      }));
    },
  },
];
