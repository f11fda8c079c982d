// Test fixture (test/plugin-seam.test.ts), not a plugin for users: the leading
// "_" keeps it out of every list. Its public route echoes what the platform
// gave it; its config can make it fail at start.
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { z } from 'zod';
import { definePlugin } from '../plugin-api.js';

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
    const adminRouter = express.Router();
    adminRouter.get('/', (_req, res) => res.json({ admin: true, tenant: ctx.tenantId }));
    ctx.log.info('started');
    return { publicRouter, adminRouter };
  },
});
