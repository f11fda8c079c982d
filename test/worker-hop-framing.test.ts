// The edge reads only the head of a worker's answer and relays the body as it
// comes: where the head ends, where the body ends (length, chunks, the
// connection's end) and what is refused, whatever way the bytes are split
// across reads. The hop end to end (crashes, timeouts, keep-alive, streaming)
// is in worker-routes, worker-blast-radius and worker-lifecycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponseHead, MalformedResponseError } from '../server/pool/upstream/response-head.js';
import { bodyReader } from '../server/pool/upstream/body-framing.js';

/** Feeds `bytes` split at `cut` to a reader for the head's framing: the body it handed on, and what was left over. */
function readAll(wire: string, cut: number, forHead = false): { status: number; body: string; rest: string; ended: boolean } {
  const buf = Buffer.from(wire, 'latin1');
  const parts = [buf.subarray(0, cut), buf.subarray(cut)];
  let pending = Buffer.alloc(0);
  let reader: ReturnType<typeof bodyReader> | undefined;
  let status = 0;
  const body: Buffer[] = [];
  let rest = '';
  let ended = false;
  for (const part of parts) {
    let chunk: Buffer = part;
    if (!reader) {
      pending = Buffer.concat([pending, part]);
      const head = parseResponseHead(pending, forHead);
      if (!head) continue;
      status = head.status;
      reader = bodyReader(head.framing);
      chunk = pending.subarray(head.headBytes);
    }
    if (ended) {
      rest += chunk.toString('latin1');
      continue;
    }
    const used = reader.feed(chunk, (d) => body.push(Buffer.from(d)));
    if (used !== -1) {
      ended = true;
      rest += chunk.subarray(used).toString('latin1');
    }
  }
  return { status, body: Buffer.concat(body).toString('latin1'), rest, ended };
}

const everyCut = (wire: string) => Array.from({ length: wire.length + 1 }, (_, i) => i);

test('Content-Length: the body is exactly that many bytes, however the reads are split', () => {
  const wire = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nKeep-Alive: timeout=5\r\n\r\n{"hello":1}';
  for (const cut of everyCut(wire)) {
    const r = readAll(wire, cut);
    assert.deepEqual(r, { status: 200, body: '{"hello":1}', rest: '', ended: true }, `cut at ${cut}`);
  }
});

test('chunked: the data without its framing, extensions and trailers dropped, the end found at every split', () => {
  const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n';
  for (const cut of everyCut(wire)) {
    const r = readAll(wire, cut);
    assert.deepEqual(r, { status: 200, body: 'hello world!', rest: '', ended: true }, `cut at ${cut}`);
  }
});

test('bytes after the end of the answer are reported, not taken as body', () => {
  const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n';
  assert.equal(readAll(wire, wire.length).rest, 'HTTP/1.1 200 OK\r\n');
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nextra';
  assert.equal(readAll(chunked, chunked.length).rest, 'extra');
});

test('no body: HEAD answers, 204, 304 and a zero length, whatever Content-Length says', () => {
  assert.deepEqual(readAll('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n', 10, true), { status: 200, body: '', rest: '', ended: true });
  for (const status of ['204 No Content', '304 Not Modified']) {
    assert.equal(parseResponseHead(Buffer.from(`HTTP/1.1 ${status}\r\nETag: "x"\r\n\r\n`), false)!.framing.kind, 'none');
  }
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), false)!.framing.kind, 'none');
});

test('no length and not chunked: the body runs to the end of the connection, which is then not kept', () => {
  const head = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), false)!;
  assert.equal(head.framing.kind, 'close');
  assert.equal(head.closes, true);
  const reader = bodyReader(head.framing);
  const seen: string[] = [];
  assert.equal(reader.feed(Buffer.from('abc'), (d) => seen.push(d.toString())), -1);
  assert.deepEqual(seen, ['abc']);
  assert.equal(reader.endsWithClose(), true);
});

test('Connection: close is seen among other tokens; an unfinished body does not end with the connection', () => {
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n'), false)!.closes, true);
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n'), false)!.closes, false);
  const reader = bodyReader({ kind: 'length', length: 10 });
  reader.feed(Buffer.from('12345'), () => {});
  assert.equal(reader.endsWithClose(), false);
});

test('headers are kept in order with repeats (Set-Cookie), values trimmed', () => {
  const head = parseResponseHead(Buffer.from('HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie:  b=2 \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n'), false)!;
  assert.equal(head.status, 201);
  assert.deepEqual(head.headers, ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Empty', '', 'Content-Length', '0']);
});

test('an interim 1xx head parses on its own; the final head follows it', () => {
  const wire = Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  const first = parseResponseHead(wire, false)!;
  assert.equal(first.status, 103);
  assert.equal(first.framing.kind, 'none');
  assert.equal(parseResponseHead(wire.subarray(first.headBytes), false)!.status, 200);
});

test('refused: no status line, a bad header line, two lengths, a length and chunks, other codings, bad chunk sizes, a head too long', () => {
  const bad = [
    'HTTP/2 200\r\n\r\n',
    'hello\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
  ];
  for (const wire of bad) assert.throws(() => parseResponseHead(Buffer.from(wire), false), MalformedResponseError, JSON.stringify(wire));
  assert.throws(() => parseResponseHead(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17_000)}`), false), /longer than/);
  for (const body of ['zz\r\n', `${'f'.repeat(13)}\r\n`, '2\r\nokXX']) {
    assert.throws(() => bodyReader({ kind: 'chunked' }).feed(Buffer.from(body), () => {}), MalformedResponseError, JSON.stringify(body));
  }
});
