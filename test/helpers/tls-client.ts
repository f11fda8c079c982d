// TLS clients for the HTTPS tests: the certificate a listener presents for a
// name (SNI), and one HTTPS request with a given Host and SNI name. Neither
// checks the chain: the tests check the certificate itself.
import tls from 'node:tls';
import https from 'node:https';
import type { HttpAnswer } from './harness.js';

export function peerCertificate(port: number, servername?: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

export function httpsRequest(port: number, host: string, reqPath = '/', headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: reqPath, servername: host, headers: { Host: host, ...headers }, rejectUnauthorized: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

