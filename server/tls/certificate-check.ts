// An uploaded certificate is checked before it is served: PEM that parses, a
// key that matches it, the domain covered (for a wildcard domain, any name
// under it), and valid now. Each refusal says which of these failed.
import crypto, { X509Certificate } from 'node:crypto';
import { AppError } from '../errors.js';

export interface CertificateDates {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The leaf (first) certificate of a PEM chain. */
export function leafOf(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

export function datesOf(cert: X509Certificate): CertificateDates {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

/** Whether the certificate covers `domain` (`*.x`: a name under x). */
export function covers(cert: X509Certificate, domain: string): boolean {
  const name = domain.startsWith('*.') ? `tenantry-check-${crypto.randomBytes(4).toString('hex')}.${domain.slice(2)}` : domain;
  return cert.checkHost(name) !== undefined;
}

export function checkUploadedCertificate(certPem: string, keyPem: string, domain: string, now = new Date()): CertificateDates {
  const refuse = (why: string) => new AppError('certificate_invalid', `The certificate was refused: ${why}.`);
  if (!/-----BEGIN CERTIFICATE-----/.test(certPem)) throw refuse('"cert" is not a PEM certificate');
  let cert: X509Certificate;
  try {
    cert = leafOf(certPem);
  } catch {
    throw refuse('"cert" does not parse as an X.509 certificate');
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch {
    throw refuse('"key" is not a PEM private key (unencrypted)');
  }
  if (!cert.checkPrivateKey(key)) throw refuse('the key does not match the certificate');
  if (!covers(cert, domain)) throw refuse(`it does not cover ${domain} (it names ${cert.subjectAltName ?? cert.subject})`);
  const dates = datesOf(cert);
  if (dates.notAfter.getTime() <= now.getTime()) throw refuse(`it expired on ${dates.notAfter.toISOString()}`);
  if (dates.notBefore.getTime() > now.getTime()) throw refuse(`it is not valid before ${dates.notBefore.toISOString()}`);
  return dates;
}
