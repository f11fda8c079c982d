// The HTTPS listener's fallback: a self-signed certificate for the platform
// host, the base domain and `*.localhost`, made at the first start with HTTPS
// and kept under <data>/certs/_self-signed/. Made again when it nears its end
// or the names changed (another platform host or base domain).
import type { CertificateFiles } from './certificate-files.js';
import { leafOf } from './certificate-check.js';
import { createSelfSigned, type PemPair } from './self-signed.js';

const NAME = '_self-signed';
const RENEW_BEFORE_MS = 30 * 86_400_000;

export function fallbackNames(platformHost: string, baseDomain: string): string[] {
  return [...new Set([platformHost, baseDomain, `*.${baseDomain}`, 'localhost', '*.localhost'])];
}

function sanOf(names: readonly string[]): string {
  return names.map((n) => `DNS:${n}`).join(', ');
}

export async function ensureFallbackCertificate(files: CertificateFiles, names: readonly string[], now = Date.now()): Promise<PemPair> {
  const existing = files.read(NAME);
  if (existing) {
    try {
      const cert = leafOf(existing.cert);
      if (Date.parse(cert.validTo) - now > RENEW_BEFORE_MS && cert.subjectAltName === sanOf(names)) return existing;
    } catch {
      /* unreadable: made again below */
    }
  }
  const pair = await createSelfSigned({ names, days: 825 });
  files.write(NAME, pair);
  return pair;
}
