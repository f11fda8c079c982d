// The last middleware of the control API: every error becomes
// `{"error": {"code", "message"}}` with its status. 5xx answers carry an
// errorId that matches the log line, never a stack or a path.
import crypto from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors.js';
import { errorBody } from '../error-response.js';
import type { Logger } from '../log.js';

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  code?: string;
  message?: string;
}

/** Errors thrown by body parsers and multer, mapped onto the catalogue. */
function fromLibraryError(err: HttpishError): AppError | undefined {
  if (err.type === 'entity.parse.failed') return new AppError('invalid_json');
  if (err.type === 'entity.too.large' || err.code === 'LIMIT_FILE_SIZE') return new AppError('payload_too_large');
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return new AppError('unsupported_media_type');
  const status = err.status ?? err.statusCode;
  if (status && status >= 400 && status < 500) return new AppError('invalid_request', err.message);
  return undefined;
}

export function errorMiddleware(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const known = err instanceof AppError ? err : fromLibraryError((err ?? {}) as HttpishError);
    if (known) {
      res.locals.errorCode = known.code;
      res.status(known.status).json(errorBody(known.code, known.message, known.details));
      return;
    }
    const errorId = crypto.randomBytes(6).toString('hex');
    log.error('request failed', { errorId, method: req.method, path: req.path, err, stack: (err as Error)?.stack });
    res.locals.errorCode = 'internal_error';
    res.status(500).json(errorBody('internal_error', undefined, { errorId }));
  };
}

export function notFoundMiddleware(req: Request, _res: Response, next: NextFunction): void {
  next(new AppError('not_found', `No API route ${req.method} ${req.path}.`));
}
