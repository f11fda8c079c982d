// Test fixture (test/plugin-seam.test.ts), not a plugin for users: the leading
// "_" keeps it out of every list. Its public route echoes what the platform
// gave it; its config can make it fail at start.
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { z } from 'zod';
import crypto from 'node:crypto';
import net from 'node:net';
import { definePlugin, type OutgoingMail } from '../plugin-api.js';

const configSchema = z.strictObject({
  greeting: z.string().min(1).max(100),
  /** Throw from onWorkerStart, to test how a failing plugin is reported. */
  failAtStart: z.boolean().optional(),
});

export default definePlugin({
  manifest: {
    name: '_fixture-echo',
    version: '0.0.0',
    description: 'Test fixture: answers with its tenant, config and process user.',
    configSchema,
  },
  onWorkerStart(ctx) {
    if (ctx.config.failAtStart) throw new Error('the fixture was configured to fail at start');
    const counter = path.join(ctx.dataDir, 'hits.txt');
    const publicRouter = express.Router();
    publicRouter.get('/', (_req, res) => {
      // Proves the plugin's own folder is writable and persists across workers.
      const hits = (fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0) + 1;
      fs.writeFileSync(counter, String(hits));
      res.json({ plugin: '_fixture-echo', tenant: ctx.tenantId, config: ctx.config, uid: process.getuid?.(), pid: process.pid, hits });
    });
    publicRouter.post('/echo', (req, res) => res.json({ body: req.body ?? null }));
    // Capabilities (test/plugin-mail.test.ts, test/plugin-api.test.ts): mail as given, a key's
    // fingerprint, the site URL, and whether the key shows anywhere in process.env.
    publicRouter.post('/mail', async (req, res) => res.json(await ctx.mail.send(req.body as OutgoingMail)));
    publicRouter.get('/key', (req, res) => {
      const key = ctx.keys.key(String(req.query.purpose ?? 'default'));
      const hex = key.toString('hex');
      const b64 = key.toString('base64');
      const inEnv = Object.entries(process.env).some(([k, v]) => /TENANTRY_CAPABILITY|KEY/i.test(k) || v?.includes(hex) || v?.includes(b64));
      res.json({ fingerprint: crypto.createHash('sha256').update(key).digest('hex'), length: key.length, inEnv, envKeys: Object.keys(process.env) });
    });
    // Tries to reach a unix socket by path (another tenant's capability socket must be out of reach).
    publicRouter.post('/probe-socket', (req, res) => {
      const conn = net.connect(String((req.body as { path?: unknown }).path));
      conn.on('connect', () => {
        conn.destroy();
        res.json({ connected: true });
      });
      conn.on('error', (err: NodeJS.ErrnoException) => res.json({ connected: false, code: err.code ?? err.message }));
    });
    // Replays the launch's start ticket, as tenant code reading /proc/self/environ could: it must be spent.
    publicRouter.get('/replay-ticket', (_req, res) => {
      let environ = '';
      try {
        environ = fs.readFileSync('/proc/self/environ', 'latin1');
      } catch (err) {
        return void res.json({ readable: false, error: (err as Error).message });
      }
      const vars = Object.fromEntries(environ.split('\0').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const socket = vars.TENANTRY_CAPABILITY_SOCKET;
      const ticket = vars.TENANTRY_CAPABILITY_TICKET;
      if (!socket || !ticket) return void res.json({ readable: true, found: false });
      const conn = net.connect(socket);
      let answer = '';
      conn.on('connect', () => conn.write(JSON.stringify({ op: 'start', ticket }) + '\n'));
      conn.on('data', (c: Buffer) => (answer += c.toString('utf8')));
      conn.on('end', () => res.json({ readable: true, found: true, answer: JSON.parse(answer) as unknown }));
      conn.on('error', (err) => res.json({ readable: true, found: true, error: err.message }));
    });
    publicRouter.get('/site-url', (_req, res) => res.json({ siteUrl: ctx.siteUrl }));
    // Background work (test/plugin-background.test.ts): what the platform recorded.
    publicRouter.post('/background', async (req, res) => res.json({ recorded: await ctx.background.setPending((req.body as { pending?: unknown }).pending === true) }));
    const adminRouter = express.Router();
    adminRouter.get('/', (_req, res) => res.json({ admin: true, tenant: ctx.tenantId }));
    // The admin root under other methods: reached with a trailing slash, never the plugin's setting.
    adminRouter.put('/', (req, res) => res.json({ admin: true, method: 'PUT', body: req.body ?? null }));
    adminRouter.delete('/', (_req, res) => res.json({ admin: true, method: 'DELETE' }));
    // Reads a raw body to its end (an import of a large file): the platform's cap must stop it.
    adminRouter.post('/count', (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.json({ bytes }));
    });
    adminRouter.post('/echo', (req, res) => res.status(201).cookie('__Host-session', 'planted', { path: '/', secure: true }).json({ admin: true, body: req.body ?? null, query: req.query, authorization: req.headers.authorization ?? null }));
    ctx.log.info('started');
    return { publicRouter, adminRouter };
  },
});
