// Content-Type of a file name (with charset for text), and whether it is worth
// compressing. Decided once per file when a release is loaded.
import mime from 'mime-types';

export function contentTypeFor(fileName: string): string {
  const type = mime.lookup(fileName) || 'application/octet-stream';
  const charset = mime.charset(type);
  return charset ? `${type}; charset=${charset.toLowerCase()}` : type;
}

const COMPRESSIBLE = new Set([
  'application/javascript',
  'application/ecmascript',
  'application/x-javascript',
  'application/json',
  'application/xml',
  'application/wasm',
  'application/x-ndjson',
  'application/vnd.ms-fontobject',
  'application/x-font-ttf',
  'application/x-font-opentype',
  'font/ttf',
  'font/otf',
  'font/collection',
  'image/svg+xml',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/bmp',
]);

/** Text-like types compress well; images, video, archives and woff2 are already compressed. */
export function isCompressible(contentType: string): boolean {
  const semi = contentType.indexOf(';');
  const type = (semi >= 0 ? contentType.slice(0, semi) : contentType).trim();
  return type.startsWith('text/') || type.endsWith('+json') || type.endsWith('+xml') || COMPRESSIBLE.has(type);
}
