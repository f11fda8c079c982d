// Accept-Encoding -> the precompressed encodings a client takes, best first.
// Browsers send a handful of distinct header values, so answers are memoised
// by the raw header: a request costs one Map lookup.

export type ContentCoding = 'br' | 'gzip';

const NONE: readonly ContentCoding[] = Object.freeze([]);
const MEMO_LIMIT = 256;
const memo = new Map<string, readonly ContentCoding[]>();

/** Pure: parses q-values; br wins a tie with gzip; `*` covers codings not named. */
export function parseAcceptEncoding(header: string): readonly ContentCoding[] {
  let br: number | undefined;
  let gzip: number | undefined;
  let star: number | undefined;
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName!.trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) q = 0;
    if (name === 'br') br = q;
    else if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip ?? 0, q);
    else if (name === '*') star = q;
  }
  br ??= star ?? 0;
  gzip ??= star ?? 0;
  const out: { c: ContentCoding; q: number }[] = [];
  if (br > 0) out.push({ c: 'br', q: br });
  if (gzip > 0) out.push({ c: 'gzip', q: gzip });
  out.sort((a, b) => b.q - a.q);
  return out.length ? Object.freeze(out.map((x) => x.c)) : NONE;
}

export function acceptedEncodings(header: string): readonly ContentCoding[] {
  let v = memo.get(header);
  if (v === undefined) {
    v = parseAcceptEncoding(header);
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(header, v);
  }
  return v;
}
