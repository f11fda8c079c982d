// A tenant's site log as server-sent events: the last lines, then every new
// line as it is appended (the file is polled by size, cheap and immune to the
// copy-and-truncate rotation). The page's EventSource sends the session
// cookie; the route's scope check has run before this is called.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TenantLogs } from '../tenants/tenant-logs.js';

const POLL_MS = 500;
const HEARTBEAT_MS = 15_000;
/** How often the caller's right to read is checked again (a revoked token or ended session closes the stream). */
const RECHECK_MS = 30_000;
const BACKLOG_LINES = 50;
/** At most this much new text is sent per poll; more (a flood) is skipped, with a note. */
const MAX_CHUNK = 64 * 1024;
/** Open streams in the whole edge: each holds a socket and a timer. */
export const MAX_STREAMS = 200;

let open = 0;

export interface LogStreamOptions {
  readonly siteLogs: TenantLogs;
  readonly tenantId: string;
  /** False once the caller may no longer read this tenant's log. */
  readonly stillAllowed: () => boolean;
}

function event(res: ServerResponse, lines: readonly string[]): void {
  // One SSE event per line: `data:` cannot hold a newline, and lines never have one.
  let out = '';
  for (const l of lines) out += `data: ${l.replace(/\r/g, '')}\n\n`;
  if (out) res.write(out);
}

/** Answers with a text/event-stream that lasts until the client leaves (or loses the right to read). */
export function streamTenantLog(req: IncomingMessage, res: ServerResponse, o: LogStreamOptions): void {
  if (open >= MAX_STREAMS) {
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '30' });
    res.end(JSON.stringify({ error: { code: 'worker_unavailable', message: 'Too many log streams are open; try again later.' } }));
    return;
  }
  open++;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 3000\n\n');
  o.siteLogs.flush();
  let offset = o.siteLogs.size(o.tenantId);
  event(res, o.siteLogs.tail(o.tenantId, BACKLOG_LINES));
  let partial = '';

  const poll = setInterval(() => {
    const size = o.siteLogs.size(o.tenantId);
    if (size === offset) return;
    if (size < offset) {
      offset = 0; // rotated: the file was truncated in place
      partial = '';
    }
    if (size - offset > MAX_CHUNK) {
      event(res, [`[${size - offset - MAX_CHUNK} bytes skipped]`]);
      offset = size - MAX_CHUNK;
      partial = '';
    }
    const text = partial + o.siteLogs.readSince(o.tenantId, offset, MAX_CHUNK);
    offset = size;
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    event(res, lines);
  }, POLL_MS);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const recheck = setInterval(() => {
    if (!o.stillAllowed()) {
      res.write('event: end\ndata: signed out\n\n');
      res.end();
    }
  }, RECHECK_MS);

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    open--;
    clearInterval(poll);
    clearInterval(heartbeat);
    clearInterval(recheck);
  };
  req.on('close', close);
  res.on('close', close);
  res.on('finish', close);
}
