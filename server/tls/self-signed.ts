// Self-signed certificates, made with @peculiar/x509 (Node can read X.509 but
// not write it): the platform's fallback certificate for the platform host and
// `*.localhost`, so HTTPS answers locally before any real certificate exists.
import { webcrypto } from 'node:crypto';
import net from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

export interface SelfSignedOptions {
  /** DNS names (`*.x` allowed) and IP addresses; the first is the common name. */
  readonly names: readonly string[];
  readonly days?: number;
  readonly notBefore?: Date;
  /** Marked as a CA: needed only where the certificate itself is the trust anchor (tests). */
  readonly ca?: boolean;
}

export async function createSelfSigned(o: SelfSignedOptions): Promise<PemPair> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${o.names[0] ?? 'tenantry'}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (o.days ?? 365) * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(o.ca === true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | (o.ca ? x509.KeyUsageFlags.keyCertSign : 0), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(o.names.map((n) => ({ type: net.isIP(n) ? 'ip' : 'dns', value: n }) as const)),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem') + '\n', key };
}
