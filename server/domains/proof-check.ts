// Checking a proof: the TXT record `_tenantry.<domain>`, or the HTTP proof URL
// fetched back from wherever the domain's DNS points. Each answers ok, or why
// not in a sentence for the API. The HTTP fetch goes to a fixed path on the
// platform's own HTTP port, never follows redirects, reads at most 4 KiB and
// returns nothing of the body but "matched or not", so a claim pointing at an
// internal address learns nothing about what answers there.
import http from 'node:http';
import net from 'node:net';
import type { DnsLookup } from './dns-lookup.js';

export type ProofOutcome = { readonly ok: true } | { readonly ok: false; readonly why: string };

const HTTP_TIMEOUT_MS = 5000;
const MAX_BODY = 4096;

export async function checkTxtProof(dns: DnsLookup, txtName: string, value: string): Promise<ProofOutcome> {
  let records: string[];
  try {
    records = await dns.txt(txtName);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { ok: false, why: `no TXT record at ${txtName}` };
    return { ok: false, why: `the TXT look-up of ${txtName} failed (${code ?? (err as Error).message})` };
  }
  if (records.some((r) => r.trim() === value)) return { ok: true };
  return { ok: false, why: records.length ? `the TXT record at ${txtName} does not hold the expected value` : `no TXT record at ${txtName}` };
}

export async function checkHttpProof(dns: DnsLookup, domain: string, port: number, path: string, body: string): Promise<ProofOutcome> {
  const url = `http://${domain}${port === 80 ? '' : `:${port}`}${path}`;
  let addresses: string[];
  try {
    addresses = await dns.addresses(domain);
  } catch (err) {
    return { ok: false, why: `${domain} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const address = addresses.find((a) => net.isIP(a) !== 0);
  if (!address) return { ok: false, why: `${domain} has no address` };
  return new Promise((resolve) => {
    const req = http.request(
      { host: address, port, path, method: 'GET', headers: { Host: domain + (port === 80 ? '' : `:${port}`), 'User-Agent': 'tenantry-domain-proof' }, timeout: HTTP_TIMEOUT_MS, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) return void req.destroy();
          chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve({ ok: false, why: `${url} answered ${res.statusCode}` });
          const got = Buffer.concat(chunks).toString('utf8').trim();
          resolve(got === body ? { ok: true } : { ok: false, why: `${url} did not answer the expected value` });
        });
        res.on('error', () => resolve({ ok: false, why: `${url} could not be read` }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, why: `${url} could not be fetched (${err.code ?? err.message})` }));
    req.end();
  });
}
