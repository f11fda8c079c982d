// GET /api/v1/isolation (admin): every isolation layer, active or missing, and why.
import express, { type Router } from 'express';
import { requireAdmin } from './auth-middleware.js';
import { summarizeReport, type IsolationReport } from '../sandbox/detect.js';

/** Mounted at /api/v1/isolation. */
export function isolationRouter(report: IsolationReport): Router {
  const r = express.Router();
  r.get('/', requireAdmin, (_req, res) => {
    const { active, missing } = summarizeReport(report);
    const { mode, degraded, layers } = report;
    res.json({ mode, degraded, active, missing, layers });
  });
  return r;
}
