// The control API (README, "HTTP API"), served only on the platform host.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Platform } from '../app/platform.js';
import { createAuthenticator } from './auth.js';
import { errorMiddleware, notFoundMiddleware } from './error-middleware.js';
import { tenantsRouter } from './tenants-routes.js';
import { tokensRouter } from './tokens-routes.js';
import { deploysRouter } from './deploys-routes.js';
import { envRouter } from './env-routes.js';
import { logsRouter } from './logs-routes.js';
import { gitHttpHandler } from '../git/git-http.js';
import { isolationRouter } from './isolation-routes.js';

const PLATFORM_PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../public');

export function createControlApp(p: Platform): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(helmet());

  app.get('/healthz', (_req, res) => {
    // Exactly the contract's answer: what is isolated is for the admin (GET /api/v1/isolation).
    res.json({ ok: true });
  });

  const { authenticate, principalFor } = createAuthenticator(p.store, p.secrets);
  // git smart HTTP: Basic auth of its own, and the raw body (a pack stream) untouched.
  app.use('/git', gitHttpHandler({ git: p.git, store: p.store, principalFor, log: p.log }));
  const api = express.Router();
  api.use(authenticate);
  api.use(express.json({ limit: '1mb' }));
  api.use(tenantsRouter(p));
  api.use(tokensRouter(p));
  api.use(deploysRouter(p));
  api.use(envRouter(p));
  api.use(logsRouter(p));
  api.use(isolationRouter(p));
  app.use('/api/v1', api);

  // The platform's own pages (public/): what a browser opening the platform host sees.
  app.use(express.static(PLATFORM_PUBLIC_DIR, { index: 'index.html', dotfiles: 'ignore' }));
  app.use(notFoundMiddleware);
  app.use(errorMiddleware(p.log));
  return app;
}
