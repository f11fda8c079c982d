// Certificates from an ACME CA (Let's Encrypt, or pebble in tests) over
// HTTP-01, with acme-client. The account key is made once and kept 0600 with
// the certificates. The challenge is answered by the edge (acme-challenges.ts)
// on the platform's HTTP port; acme-client's own pre-check of it is skipped,
// as it would fetch port 80 through the system's DNS, which need not reach here.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import * as acme from 'acme-client';
import type { Logger } from '../log.js';
import type { AcmeChallenges } from './acme-challenges.js';
import type { CertificateFiles } from './certificate-files.js';
import type { PemPair } from './self-signed.js';

export interface CertificateIssuer {
  /** A certificate and key for exactly `domain`; rejects with the CA's reason. */
  issue(domain: string): Promise<PemPair>;
}

export interface AcmeIssuerOptions {
  readonly directoryUrl: string;
  readonly email: string | undefined;
  /** Extra CA certificates (PEM file) trusted for the ACME server's own TLS. */
  readonly caFile: string | undefined;
  readonly files: CertificateFiles;
  readonly challenges: AcmeChallenges;
  readonly log: Logger;
}

export function createAcmeIssuer(o: AcmeIssuerOptions): CertificateIssuer {
  // acme-client's own trace (requests, challenge states), at debug level.
  acme.setLogger((line) => o.log.debug(`acme: ${line}`));
  if (o.caFile) {
    // acme-client talks through its own axios instance; this process has no other use for it.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, fs.readFileSync(o.caFile, 'utf8')], keepAlive: false });
  }
  let client: acme.Client | undefined;
  const clientFor = (): acme.Client => {
    client ??= new acme.Client({
      directoryUrl: o.directoryUrl,
      accountKey: o.files.secretFile('acme-account', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    });
    return client;
  };

  return {
    async issue(domain) {
      const c = clientFor();
      const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey());
      const tokens: string[] = [];
      const cert = await c.auto({
        csr,
        email: o.email,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          if (challenge.type !== 'http-01') throw new Error(`challenge ${challenge.type} is not offered by this platform`);
          // Only ever for the name being issued: the authorization names it.
          if (authz.identifier.value !== domain) throw new Error(`the CA asked about ${authz.identifier.value}, not ${domain}`);
          o.challenges.add(domain, challenge.token, keyAuthorization);
          tokens.push(challenge.token);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          o.challenges.remove(challenge.token);
        },
      }).finally(() => {
        for (const t of tokens) o.challenges.remove(t);
      });
      return { cert, key: key.toString() };
    },
  };
}
