// Whether a tenant's `.js` file is CommonJS or ESM is Node's call, from the
// nearest package.json above the file. Without one in the release, the answer
// would depend on what lies above the release on this host: the platform's
// own package.json ("type": "module") when the data folder is inside the
// clone, nothing in a sandbox's file view or behind Node's permission model
// (then Node guesses from the syntax). So every release has a package.json at
// its root: the tenant's own when it ships one (its "type" decides), else this
// boundary, which makes its `.js` CommonJS wherever the data folder is and
// whichever launcher runs the worker. `.mjs` and `.cjs` are unaffected. The
// root package.json is never served as a static file (release-manifest.ts).
import fs from 'node:fs';
import path from 'node:path';

export const MODULE_BOUNDARY_FILE = 'package.json';
export const MODULE_BOUNDARY = '{"type": "commonjs", "description": "Written by Tenantry: this release has no package.json of its own, so its .js files are CommonJS."}\n';

/**
 * Writes the boundary into a release without a root package.json. Returns
 * whether it wrote one. Throws when the name is taken by something Node would
 * look past (a folder), so that the release is refused rather than run with
 * another module type.
 */
export function ensureModuleBoundary(releaseDir: string): boolean {
  const file = path.join(releaseDir, MODULE_BOUNDARY_FILE);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st?.isFile()) return false;
  if (st || fs.lstatSync(file, { throwIfNoEntry: false })) throw new Error(`${MODULE_BOUNDARY_FILE} at the root of the release is not a file`);
  // O_EXCL: never through a link, never over a file that appeared meanwhile.
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  try {
    fs.writeSync(fd, MODULE_BOUNDARY);
    // Readable by the tenant's worker whatever the umask (Node skips an unreadable package.json silently).
    fs.fchmodSync(fd, 0o644);
    // On disk before the release can go live, like every other file of it (README "Durability").
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const dirFd = fs.openSync(releaseDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
  return true;
}
