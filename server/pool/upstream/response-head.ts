// The head of a worker's HTTP/1.1 answer, read from the bytes the edge got on
// the worker's socket: the status, the headers as a flat name/value list, and
// how its body is framed. The body itself is never parsed: the edge relays it
// as it comes (only a chunked body is taken apart into its chunks, see
// body-framing.ts). The worker is Node's HTTP server; anything else is refused.

/** Longest head accepted from a worker (Node's own limit for request heads). */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

export type BodyFraming =
  /** No body: HEAD answers, 1xx, 204, 304, Content-Length: 0. */
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Until the worker closes the connection (no length and not chunked). */
  | { readonly kind: 'close' };

export interface ResponseHead {
  readonly status: number;
  /** Names and values in turn, as sent (latin1). */
  readonly headers: string[];
  readonly framing: BodyFraming;
  /** The worker said Connection: close (or the answer ends with the connection). */
  readonly closes: boolean;
  /** Bytes of the buffer taken by the head, CRLFCRLF included. */
  readonly headBytes: number;
}

export class MalformedResponseError extends Error {
  override readonly name = 'MalformedResponseError';
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

/**
 * The head at the start of `buf`, or undefined while its end has not arrived.
 * `forHead`: the request was HEAD (its answer has no body whatever it says).
 */
export function parseResponseHead(buf: Buffer, forHead: boolean): ResponseHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) {
    if (buf.length > MAX_RESPONSE_HEAD_BYTES) throw new MalformedResponseError(`the answer's head is longer than ${MAX_RESPONSE_HEAD_BYTES} bytes`);
    return undefined;
  }
  if (end > MAX_RESPONSE_HEAD_BYTES) throw new MalformedResponseError(`the answer's head is longer than ${MAX_RESPONSE_HEAD_BYTES} bytes`);
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m) throw new MalformedResponseError('the answer does not start with an HTTP/1.1 status line');
  const status = Number(m[1]);
  const headers: string[] = [];
  let length: number | undefined;
  let chunked = false;
  let closes = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!HEADER_NAME.test(name)) throw new MalformedResponseError('the answer has a malformed header line');
    const value = line.slice(colon + 1).trim();
    headers.push(name, value);
    switch (name.toLowerCase()) {
      case 'content-length':
        if (!DIGITS.test(value) || (length !== undefined && length !== Number(value))) throw new MalformedResponseError('the answer has an invalid Content-Length');
        length = Number(value);
        break;
      case 'transfer-encoding':
        // Node's server sends "chunked" alone; any other coding could not be framed here.
        if (value.toLowerCase() !== 'chunked') throw new MalformedResponseError(`the answer's Transfer-Encoding "${value}" is not supported`);
        chunked = true;
        break;
      case 'connection':
        if (/(?:^|,)\s*close\s*(?:,|$)/i.test(value)) closes = true;
        break;
    }
  }
  if (chunked && length !== undefined) throw new MalformedResponseError('the answer has both Content-Length and Transfer-Encoding');
  let framing: BodyFraming;
  if (forHead || status < 200 || status === 204 || status === 304 || length === 0) framing = { kind: 'none' };
  else if (chunked) framing = { kind: 'chunked' };
  else if (length !== undefined) framing = { kind: 'length', length };
  else framing = { kind: 'close' };
  return { status, headers, framing, closes: closes || framing.kind === 'close', headBytes: end + 4 };
}
