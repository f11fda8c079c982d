// Packs a site folder into a tar.gz for upload: `.git` always stays out,
// `node_modules` unless asked for, and whatever `.tenantryignore` lists
// (gitignore syntax).
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import ignore from 'ignore';
import { create as createTar } from 'tar';

export const IGNORE_FILE = '.tenantryignore';

export interface PackOptions {
  includeNodeModules?: boolean;
}

/** Relative paths (folders end with '/') to put in the archive, in a stable order. */
export function listSiteFiles(dir: string, opts: PackOptions = {}): string[] {
  const ig = ignore();
  ig.add('.git/');
  if (!opts.includeNodeModules) ig.add('node_modules/');
  const ignoreFile = path.join(dir, IGNORE_FILE);
  if (fs.existsSync(ignoreFile)) ig.add(fs.readFileSync(ignoreFile, 'utf8'));
  const out: string[] = [];
  const walk = (rel: string) => {
    const entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ent of entries) {
      const child = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (ig.ignores(child + '/')) continue;
        out.push(child + '/');
        walk(child);
      } else if (ent.isFile() || ent.isSymbolicLink()) {
        if (ig.ignores(child)) continue;
        out.push(child);
      }
    }
  };
  walk('');
  return out;
}

/** Writes `dir` as a tar.gz to `destFile`; returns how many entries went in. */
export async function packSite(dir: string, destFile: string, opts: PackOptions = {}): Promise<{ entries: number; files: number }> {
  const list = listSiteFiles(dir, opts);
  const files = list.filter((p) => !p.endsWith('/')).length;
  if (files === 0) throw new Error(`${dir} holds no files to deploy`);
  // noDirRecurse: the list above already says exactly what goes in.
  const tarStream = createTar({ gzip: true, cwd: dir, portable: true, noDirRecurse: true, follow: false }, list.map((p) => p.replace(/\/$/, '')));
  await pipeline(tarStream, fs.createWriteStream(destFile, { mode: 0o600 }));
  return { entries: list.length, files };
}
