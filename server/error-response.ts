// The one error body: `{"error": {"code", "message", ...details}}`, with the
// status and default message from the catalogue (errors.ts). The control API's
// error middleware, the edge's pipeline and the worker proxy all answer with it.
import type { ServerResponse } from 'node:http';
import { ERRORS, type ErrorCode } from './errors.js';

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string } & Readonly<Record<string, unknown>>;
}

export function errorBody(code: ErrorCode, message: string = ERRORS[code].message, details?: Readonly<Record<string, unknown>>): ErrorBody {
  return { error: { code, message, ...details } };
}

/**
 * Answers `res` with the error, on a bare node response (the edge's hot path
 * has no Express). Once headers are out there is no way to say it: the
 * connection is cut so the client does not take a partial body for a whole one.
 */
export function sendError(res: ServerResponse, code: ErrorCode, message?: string, headers: Readonly<Record<string, string>> = {}): void {
  if (res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(code, message)) + '\n';
  res.writeHead(ERRORS[code].status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}
