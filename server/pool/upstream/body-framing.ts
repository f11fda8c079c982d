// Where a worker's answer body ends, from the bytes as they come: a count for
// Content-Length, the chunk sizes of a chunked body (whose data is handed on
// without its framing: the edge frames its own answer), or the end of the
// connection. The body's bytes are passed on as slices, never copied.
import { MalformedResponseError, type BodyFraming } from './response-head.js';

/** Longest chunk-size line (with extensions) or trailer line accepted. */
const MAX_LINE = 4096;

export interface BodyReader {
  /**
   * Takes the bytes that follow; hands each run of body data to `data`.
   * Returns how many bytes of `buf` belong to the body (the rest would be the
   * start of something the worker had no business sending), or -1 while the
   * body goes on past `buf`.
   */
  feed(buf: Buffer, data: (chunk: Buffer) => void): number;
  /** The worker closed the connection: whether that ends the body properly. */
  endsWithClose(): boolean;
}

export function bodyReader(framing: BodyFraming): BodyReader {
  switch (framing.kind) {
    case 'none':
      return { feed: () => 0, endsWithClose: () => true };
    case 'length':
      return new LengthReader(framing.length);
    case 'chunked':
      return new ChunkedReader();
    case 'close':
      return {
        feed: (buf, data) => {
          if (buf.length) data(buf);
          return -1;
        },
        endsWithClose: () => true,
      };
  }
}

class LengthReader implements BodyReader {
  constructor(private left: number) {}

  feed(buf: Buffer, data: (chunk: Buffer) => void): number {
    if (buf.length < this.left) {
      if (buf.length) data(buf);
      this.left -= buf.length;
      return -1;
    }
    const take = this.left;
    if (take) data(take === buf.length ? buf : buf.subarray(0, take));
    this.left = 0;
    return take;
  }

  endsWithClose(): boolean {
    return this.left === 0;
  }
}

type ChunkState = 'size' | 'data' | 'data-end' | 'trailers' | 'done';

class ChunkedReader implements BodyReader {
  private state: ChunkState = 'size';
  private left = 0;
  /** A size or trailer line split across reads. */
  private line = '';

  feed(buf: Buffer, data: (chunk: Buffer) => void): number {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case 'size':
        case 'trailers': {
          const nl = buf.indexOf(10, i);
          if (nl === -1) {
            this.addToLine(buf.toString('latin1', i));
            return -1;
          }
          this.addToLine(buf.toString('latin1', i, nl));
          i = nl + 1;
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.state === 'size') this.sizeLine(line);
          else if (line === '') this.state = 'done';
          break;
        }
        case 'data': {
          const take = Math.min(this.left, buf.length - i);
          data(buf.subarray(i, i + take));
          i += take;
          this.left -= take;
          if (this.left === 0) this.state = 'data-end';
          break;
        }
        case 'data-end': {
          // The CRLF after a chunk's data, possibly split across reads.
          const b = buf[i++]!;
          if (b === 10) this.state = 'size';
          else if (b !== 13) throw new MalformedResponseError('a chunk of the answer is not followed by CRLF');
          break;
        }
        case 'done':
          return i;
      }
      if (this.state === 'done') return i;
    }
    return -1;
  }

  endsWithClose(): boolean {
    return this.state === 'done';
  }

  private addToLine(part: string): void {
    this.line += part;
    if (this.line.length > MAX_LINE) throw new MalformedResponseError('a chunk size or trailer line of the answer is too long');
  }

  private sizeLine(line: string): void {
    const hex = line.split(';', 1)[0]!.trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new MalformedResponseError('the answer has an invalid chunk size');
    this.left = parseInt(hex, 16);
    // The last chunk is followed by trailers (dropped: the edge sends none) and an empty line.
    this.state = this.left === 0 ? 'trailers' : 'data';
  }
}
