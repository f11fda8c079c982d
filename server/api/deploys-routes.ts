// /api/v1/tenants/:id/deploys: upload a site archive (multipart field
// `archive`, or a raw tar / tar.gz body) or a manifest of paths and SHA-256s
// (then the missing files one by one, then finalize), list deploys, make one
// live again.
// Uploads are streamed to a file under the tenant's staging folder first, so a
// slow client never holds the tenant's deploy lock; the file goes afterwards.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import multer from 'multer';
import type { TenantService } from '../tenants/tenant-service.js';
import type { DeployService } from '../deploy/deploy-service.js';
import type { ManifestDeploys } from '../deploy/manifest-deploys.js';
import { auditActor } from './audit-trail.js';
import { requireScope } from './auth-middleware.js';
import { AppError } from '../errors.js';
import { jsonBody } from './json-body.js';

/** Runs one Express middleware (a body parser) inside a handler, after the checks that come first. */
function runMiddleware(mw: (req: Request, res: Response, next: (err?: unknown) => void) => void, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => mw(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
}

/** Raw body types; the content itself is sniffed (gzip magic or not). */
export const RAW_ARCHIVE_TYPES = new Set(['application/gzip', 'application/x-gzip', 'application/x-tar', 'application/octet-stream', 'application/x-compressed-tar']);

const MAX_MESSAGE = 500;

function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function uploadName(): string {
  return `upload-${Date.now().toString(36)}-${crypto.randomBytes(6).toString('hex')}`;
}

/** Streams a raw body to `file`; 413 past `cap` bytes. */
async function saveRawBody(req: Request, file: string, cap: number): Promise<void> {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > cap) cb(new AppError('payload_too_large', `The archive is larger than this tenant's upload cap of ${Math.floor(cap / (1024 * 1024))} MiB.`));
      else cb(null, chunk);
    },
  });
  try {
    await pipeline(req, counter, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (req.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') {
      throw new AppError('invalid_request', 'The upload was interrupted before the archive was complete.');
    }
    throw err;
  }
}

/** Runs multer (disk storage: the file streams to disk, never to memory). */
function saveMultipart(req: Request, res: Response, dir: string, cap: number): Promise<Express.Multer.File | undefined> {
  const upload = multer({
    storage: multer.diskStorage({ destination: dir, filename: (_req, _file, cb) => cb(null, uploadName()) }),
    limits: { fileSize: cap, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30 },
  }).single('archive');
  return new Promise((resolve, reject) => {
    upload(req, res, (err: unknown) => {
      if (!err) return resolve(req.file);
      const e = err as { code?: string; message?: string; field?: string };
      if (e.code === 'LIMIT_FILE_SIZE') return reject(new AppError('payload_too_large', `The archive is larger than this tenant's upload cap of ${Math.floor(cap / (1024 * 1024))} MiB.`));
      if (e.code === 'LIMIT_UNEXPECTED_FILE') return reject(new AppError('invalid_request', `Unexpected file field "${e.field ?? ''}"; send the archive in the field "archive".`));
      if (typeof e.code === 'string' && e.code.startsWith('LIMIT_')) return reject(new AppError('invalid_request', `The form is too large: ${e.message}.`));
      reject(new AppError('invalid_request', `The multipart body could not be read: ${e.message ?? String(err)}.`));
    });
  });
}

function messageFrom(req: Request): string | undefined {
  const fromBody = (req.body as Record<string, unknown> | undefined)?.message;
  const raw = typeof fromBody === 'string' ? fromBody : typeof req.query.message === 'string' ? req.query.message : undefined;
  if (raw !== undefined && raw.length > MAX_MESSAGE) throw new AppError('invalid_request', `message: at most ${MAX_MESSAGE} characters.`);
  return raw;
}

export interface DeploysRouterDeps {
  readonly tenants: TenantService;
  readonly deploys: DeployService;
  readonly manifestDeploys: ManifestDeploys;
}

/** A manifest line is a path and a 64-digit hash: this much JSON per allowed file, plus room for the rest. */
const MANIFEST_BYTES_PER_FILE = 512;
const MANIFEST_BASE_BYTES = 64 * 1024;
/** A manifest nests two levels ({"files": {...}}); a little slack for what may be added. */
const MANIFEST_MAX_DEPTH = 4;

/** Mounted at /api/v1/tenants/:id/deploys. */
export function deploysRouter(p: DeploysRouterDeps): Router {
  const r = Router({ mergeParams: true });

  r.post('/', requireScope('deploy'), async (req, res) => {
    const tenantId = req.params.id as string;
    p.tenants.get(tenantId);
    const type = mediaType(req);
    const cap = p.deploys.uploadCapBytes(tenantId);
    const declared = Number(req.headers['content-length']);
    let file: string | undefined;
    if (type === 'application/json') {
      const cap = MANIFEST_BASE_BYTES + p.deploys.limitsFor(tenantId).maxEntries * MANIFEST_BYTES_PER_FILE;
      await runMiddleware(jsonBody({ limit: String(cap), maxDepth: MANIFEST_MAX_DEPTH }), req, res);
      const answer = await p.manifestDeploys.create(tenantId, req.body, { source: 'upload', message: messageFrom(req), actor: auditActor(req) });
      res.status(answer.status).json(answer.body);
      return;
    }
    try {
      if (type === 'multipart/form-data') {
        if (declared > cap + 1024 * 1024) throw new AppError('payload_too_large', `The archive is larger than this tenant's upload cap of ${Math.floor(cap / (1024 * 1024))} MiB.`);
        const saved = await saveMultipart(req, res, await p.deploys.uploadDir(tenantId), cap);
        file = saved?.path;
        if (!file) throw new AppError('invalid_request', 'No archive: send the tar or tar.gz in the multipart field "archive".');
      } else if (RAW_ARCHIVE_TYPES.has(type)) {
        if (declared > cap) throw new AppError('payload_too_large', `The archive is larger than this tenant's upload cap of ${Math.floor(cap / (1024 * 1024))} MiB.`);
        file = path.join(await p.deploys.uploadDir(tenantId), uploadName());
        await saveRawBody(req, file, cap);
      } else {
        throw new AppError(
          'unsupported_media_type',
          `Send the archive as multipart/form-data (field "archive") or as a raw body of type application/gzip or application/x-tar, or a manifest as application/json${type ? `, not ${type}` : ''}.`,
        );
      }
      const result = await p.deploys.deployArchive(tenantId, file, { source: 'upload', message: messageFrom(req), actor: auditActor(req) });
      res.status(201).json(result);
    } catch (err) {
      // The client may still be sending: do not read the rest, close after the answer.
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      throw err;
    } finally {
      if (file) await fsp.rm(file, { force: true });
    }
  });

  r.get('/', requireScope('read'), (req, res) => {
    res.json({ deploys: p.deploys.list(req.params.id as string) });
  });

  // One file of a manifest deploy, by the SHA-256 of its bytes (checked as it arrives).
  r.put('/:deployId/files/:sha256', requireScope('deploy'), async (req, res) => {
    const tenantId = req.params.id as string;
    p.tenants.get(tenantId);
    const type = mediaType(req);
    if (type !== '' && type !== 'application/octet-stream') {
      res.setHeader('Connection', 'close');
      throw new AppError('unsupported_media_type', `Send the file's bytes as application/octet-stream${type ? `, not ${type}` : ''}.`);
    }
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    try {
      const stored = await p.manifestDeploys.receive(tenantId, req.params.deployId as string, req.params.sha256 as string, req, Number.isFinite(declared) ? declared : undefined);
      // One row per accepted file would flood the trail: the deploy's own row counts them ("uploaded"). Refusals get theirs.
      if (req.audit) req.audit.trail.rows++;
      res.status(200).json(stored);
    } catch (err) {
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      throw err;
    }
  });

  r.post('/:deployId/finalize', requireScope('deploy'), async (req, res) => {
    const tenantId = req.params.id as string;
    p.tenants.get(tenantId);
    res.status(201).json(await p.manifestDeploys.finalize(tenantId, req.params.deployId as string, auditActor(req)));
  });

  r.post('/:deployId/activate', requireScope('deploy'), async (req, res) => {
    const d = await p.deploys.activate(req.params.id as string, req.params.deployId as string, auditActor(req));
    res.json(d);
  });

  return r;
}
