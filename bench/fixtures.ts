// The files every server under test serves, written once into a temporary
// folder: one site per tenant (folder per Host), and the 2,000-file deploy.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SMALL_FILE = '/small.html';
export const SMALL_BYTES = 14 * 1024;
export const MIX_TENANTS = 20;
export const MIX_FILES_PER_TENANT = 50;
export const API_TENANTS = 5;

export interface SiteFixture {
  /** Tenant id, also the first label of its Host. */
  readonly id: string;
  readonly dir: string;
  /** URL paths of its files. */
  readonly paths: readonly string[];
}

/** Text that compresses like real pages and scripts (words, not random bytes). */
function text(bytes: number, seed: number): string {
  const words = ['tenant', 'static', 'release', 'request', 'header', 'cache', 'deploy', 'worker', 'route', 'page', 'style', 'script'];
  let out = `<!doctype html><title>page ${seed}</title>\n`;
  let i = seed;
  while (out.length < bytes) {
    out += words[i % words.length] + (i % 13 === 0 ? '\n' : ' ');
    i = (i * 31 + 7) % 1009;
  }
  return out.slice(0, bytes);
}

function write(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/** Tenant `bench-01`..`bench-20`: the 14 KB file, an index, and 50 files of 1-32 KB of mixed types. */
export function makeSites(root: string): SiteFixture[] {
  const sites: SiteFixture[] = [];
  const kinds = ['html', 'css', 'js', 'json', 'svg', 'png'];
  for (let t = 1; t <= MIX_TENANTS; t++) {
    const id = `bench-${String(t).padStart(2, '0')}`;
    const dir = path.join(root, id);
    write(path.join(dir, 'index.html'), text(2048, t));
    write(path.join(dir, SMALL_FILE.slice(1)), text(SMALL_BYTES, 1));
    const paths: string[] = [];
    for (let f = 0; f < MIX_FILES_PER_TENANT; f++) {
      const kind = kinds[f % kinds.length]!;
      const size = 1024 + ((f * 977 + t * 131) % 31) * 1024;
      const rel = `/assets/${Math.floor(f / 10)}/file-${f}.${kind}`;
      write(path.join(dir, rel.slice(1)), kind === 'png' ? crypto.randomBytes(size) : text(size, f + t));
      paths.push(rel);
    }
    // A few tenants have a dynamic route (the others cost no worker at all).
    if (t <= API_TENANTS) write(path.join(dir, 'api/hello.js'), "module.exports = (req, res) => res.json({ hello: 'world', n: 42 });\n");
    sites.push({ id, dir, paths });
  }
  return sites;
}

/** 2,000 files, about 20 MB: a third text (compressible), the rest binary, as a built site looks. */
export function makeLargeDeploy(dir: string): { files: number; bytes: number } {
  let bytes = 0;
  const files = 2000;
  for (let i = 0; i < files; i++) {
    const size = 2048 + ((i * 7919) % 18) * 1024;
    const binary = i % 3 !== 0;
    const rel = `public/section-${Math.floor(i / 100)}/item-${i}.${binary ? 'webp' : 'html'}`;
    const data = binary ? crypto.randomBytes(size) : text(size, i);
    write(path.join(dir, rel), data);
    bytes += size;
  }
  return { files, bytes };
}
