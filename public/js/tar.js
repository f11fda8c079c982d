// A small ustar writer: a dropped folder becomes one tar (then gzip by the
// browser's CompressionStream), the format the deploy API takes. Regular files
// only; long paths use the ustar prefix field (up to 255 bytes).

const BLOCK = 512;
const enc = new TextEncoder();

function field(buf, offset, length, text) {
  const bytes = enc.encode(text);
  if (bytes.length > length) throw new Error(`tar: "${text}" does not fit`);
  buf.set(bytes, offset);
}

function octal(buf, offset, length, n) {
  // length-1 octal digits, then NUL
  field(buf, offset, length, n.toString(8).padStart(length - 1, '0') + '\0');
}

/** Splits a path into ustar's prefix (155) and name (100) at a slash. */
function splitPath(path) {
  const bytes = enc.encode(path);
  if (bytes.length <= 100) return ['', path];
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (enc.encode(prefix).length <= 155 && enc.encode(name).length <= 100) return [prefix, name];
  }
  throw new Error(`The path "${path}" is too long for a tar archive.`);
}

function header(path, size, mtime) {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitPath(path);
  field(h, 0, 100, name);
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(mtime / 1000));
  h.fill(0x20, 148, 156); // checksum counted as spaces
  h[156] = 0x30; // '0': regular file
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** [{path, file}] -> a Blob holding the tar. */
export async function tarBlob(entries) {
  const parts = [];
  for (const { path, file } of entries) {
    parts.push(header(path, file.size, file.lastModified || Date.now()));
    parts.push(file);
    const pad = (BLOCK - (file.size % BLOCK)) % BLOCK;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return new Blob(parts, { type: 'application/x-tar' });
}

/** Gzips a blob with the browser's CompressionStream (where there is one). */
export async function gzipBlob(blob) {
  if (typeof CompressionStream === 'undefined') return blob;
  const stream = blob.stream().pipeThrough(new CompressionStream('gzip'));
  return new Blob([await new Response(stream).arrayBuffer()], { type: 'application/gzip' });
}
