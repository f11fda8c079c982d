// Certificates and keys on disk: <data>/certs/<name>/{cert.pem,key.pem}, the
// folder 0700 and the files 0600, owned by the platform's user and outside
// every worker's file view (workers see only their release and data folders).
// Written to a temporary name and renamed, so a reader never sees half a file.
import fs from 'node:fs';
import path from 'node:path';
import type { PemPair } from './self-signed.js';

/** Folder name for a certificate: a wildcard's `*` becomes `_wildcard` (`_` is in no domain name). */
export function folderName(name: string): string {
  return name.startsWith('*.') ? `_wildcard.${name.slice(2)}` : name;
}

export class CertificateFiles {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    fs.chmodSync(root, 0o700);
  }

  private dir(name: string): string {
    const folder = folderName(name);
    // Names come from checked domains or fixed internal names; refuse anything that could leave the root.
    if (!/^[a-z0-9_*.-]+$/.test(folder) || folder.includes('..')) throw new Error(`not a certificate name: ${name}`);
    return path.join(this.root, folder);
  }

  write(name: string, pair: PemPair): void {
    const dir = this.dir(name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [file, body] of [['key.pem', pair.key], ['cert.pem', pair.cert]] as const) {
      const tmp = path.join(dir, `.${file}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, body, { mode: 0o600 });
      fs.renameSync(tmp, path.join(dir, file));
    }
  }

  read(name: string): PemPair | undefined {
    const dir = this.dir(name);
    try {
      return { cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'), key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8') };
    } catch {
      return undefined;
    }
  }

  remove(name: string): void {
    fs.rmSync(this.dir(name), { recursive: true, force: true });
  }

  /** A private file of the platform's (the ACME account key), created 0600 on first use. */
  secretFile(name: string, make: () => string): string {
    const file = path.join(this.dir('_' + name), 'key.pem');
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const value = make();
    fs.writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
    return value;
  }
}
