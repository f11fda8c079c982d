// Small plain-text answers of the edge that name no tenant.
import type { ServerResponse } from 'node:http';

export function sendPlain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = text + '\n';
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

/** A Host we do not serve: same answer for every unknown name, so nothing leaks. */
export function sendUnknownHost(res: ServerResponse): void {
  sendPlain(res, 404, 'Not Found: no site is configured for this host name.');
}
