// A minimal CGI/1.1 gateway (RFC 3875) for one program: the request body
// streams to its stdin, its stdout is a header block (with an optional
// `Status:`) followed by the body, streamed back as it comes.
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';

export interface CgiOptions {
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  log: Logger;
  /** Called once the program has exited (or failed to start). */
  onExit?: (result: CgiExit) => void;
}

/** How the program ended, and how much of the request body it was given. */
export interface CgiExit {
  readonly code: number | null;
  /** Request body bytes read from the client. */
  readonly bytesIn: number;
  /** The body's first bytes (up to HEAD_KEEP_BYTES). */
  readonly bodyHead: Buffer;
}

const HEAD_KEEP_BYTES = 64 * 1024;

export interface CgiHead {
  status: number;
  headers: Array<[string, string]>;
}

/** Parses a CGI header block (lines end in LF or CRLF). */
export function parseCgiHead(block: string): CgiHead {
  let status = 200;
  const headers: Array<[string, string]> = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') {
      const n = Number.parseInt(value, 10);
      if (n >= 100 && n <= 599) status = n;
    } else {
      headers.push([name, value]);
    }
  }
  if (status === 200 && headers.some(([n]) => n.toLowerCase() === 'location')) status = 302;
  return { status, headers };
}

/** Where the header block ends: the index just past the blank line, or -1. */
function headEnd(buf: Buffer): { end: number; bodyStart: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { end: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { end: lf, bodyStart: lf + 2 };
  return undefined;
}

const MAX_HEAD_BYTES = 64 * 1024;

export function runCgi(req: IncomingMessage, res: ServerResponse, opts: CgiOptions): void {
  const child = spawn(opts.command, opts.args, { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let exited = false;
  let bytesIn = 0;
  const kept: Buffer[] = [];
  let keptBytes = 0;
  const finish = (code: number | null) => {
    if (exited) return;
    exited = true;
    opts.onExit?.({ code, bytesIn, bodyHead: Buffer.concat(kept) });
  };
  child.once('close', finish);
  child.once('error', (err) => {
    opts.log.error('CGI program did not start', { command: opts.command, err });
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end('The git service is not available.\n');
    finish(null);
  });

  // A client that goes away takes the program with it (after a complete
  // answer the program may still be tidying up, e.g. receive-pack's auto gc).
  res.once('close', () => {
    if (!res.writableFinished && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  // Counted before the pipe is attached, in the same tick: both see every chunk.
  req.on('data', (c: Buffer) => {
    bytesIn += c.length;
    if (keptBytes < HEAD_KEEP_BYTES) {
      kept.push(c.subarray(0, HEAD_KEEP_BYTES - keptBytes));
      keptBytes += Math.min(c.length, HEAD_KEEP_BYTES - keptBytes);
    }
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {}); // the program may stop reading early (EPIPE)
  req.on('error', () => child.kill('SIGTERM'));

  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 8000) stderr += c.toString();
  });
  child.once('close', (code) => {
    if (code !== 0 && stderr.trim()) opts.log.warn('CGI program reported', { command: opts.command, code, stderr: stderr.trim() });
  });

  let head: Buffer = Buffer.alloc(0);
  let headDone = false;
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const at = headEnd(head);
    if (!at) {
      if (head.length > MAX_HEAD_BYTES) {
        child.kill('SIGKILL');
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('The git service sent a malformed answer.\n');
      }
      return;
    }
    headDone = true;
    child.stdout.off('data', onData);
    const parsed = parseCgiHead(head.subarray(0, at.end).toString('latin1'));
    for (const [name, value] of parsed.headers) res.appendHeader(name, value);
    res.statusCode = parsed.status;
    const rest = head.subarray(at.bodyStart);
    if (rest.length) res.write(rest);
    child.stdout.pipe(res);
  };
  child.stdout.on('data', onData);
  child.stdout.once('end', () => {
    if (headDone || res.writableEnded) return;
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end('The git service ended without an answer.\n');
  });
}
