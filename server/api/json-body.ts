// JSON bodies, read only by the routes that take one and only after the token
// and scope were checked: a size cap fitting the route, and a nesting cap
// checked on the raw bytes before JSON.parse runs, so no body can hold the
// edge's one event loop (a megabyte of "[[[[" costs the parser a fifth of a second).
import express, { type RequestHandler } from 'express';
import { AppError } from '../errors.js';

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when arrays and objects in `buf` nest deeper than `max` (strings skipped). */
export function nestsDeeperThan(buf: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return false;
}

export interface JsonBodyLimits {
  /** Largest body, in body-parser's notation ('16kb'). */
  readonly limit: string;
  /** Deepest nesting of arrays and objects. */
  readonly maxDepth: number;
}

/** Small settings objects: tenants, tokens. */
export const SMALL_JSON: JsonBodyLimits = { limit: '16kb', maxDepth: 8 };

export function jsonBody(limits: JsonBodyLimits): RequestHandler {
  return express.json({
    limit: limits.limit,
    verify: (_req, _res, buf) => {
      if (nestsDeeperThan(buf, limits.maxDepth)) {
        throw new AppError('invalid_request', `The JSON body nests deeper than ${limits.maxDepth} levels.`);
      }
    },
  });
}
