// GET /api/v1/isolation (admin): every isolation layer, active or missing, and why.
import express, { type Router } from 'express';
import type { Platform } from '../app/platform.js';
import { requireAdmin } from './auth.js';
import { summarizeReport } from '../sandbox/detect.js';

export function isolationRouter(p: Platform): Router {
  const r = express.Router();
  r.get('/isolation', requireAdmin, (_req, res) => {
    const { active, missing } = summarizeReport(p.sandbox.report);
    const { mode, degraded, layers } = p.sandbox.report;
    res.json({ mode, degraded, active, missing, layers });
  });
  return r;
}
