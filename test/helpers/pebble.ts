// Debian's `pebble` package on loopback, for the domain proof and ACME tests:
// pebble-challtestsrv as a real DNS server (A records answer 127.0.0.1 unless
// told otherwise; TXT records set through its management API) and pebble, an
// ACME CA whose HTTP-01 validator fetches from the platform's HTTP port.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { commandAvailable } from './git-client.js';
import { createSelfSigned } from '../../server/tls/self-signed.js';

/** Why the pebble tests cannot run here, or undefined when they can. */
export function pebbleMissing(): string | undefined {
  for (const cmd of ['pebble', 'pebble-challtestsrv']) {
    if (!commandAvailable(cmd)) return `${cmd} is not installed (Debian: apt-get install pebble)`;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface Spawned {
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    child,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function waitForLine(p: Spawned, pattern: RegExp, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(p.output())) {
    if (p.child.exitCode !== null) throw new Error(`${what} exited:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start in time:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ChallTestSrv {
  /** `127.0.0.1:<port>`, for TENANTRY_DNS_SERVERS and pebble's -dnsserver. */
  readonly dnsServer: string;
  setTxt(name: string, value: string): Promise<void>;
  clearTxt(name: string): Promise<void>;
  /** Replaces the name's A records. */
  setA(name: string, addresses: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startChallTestSrv(): Promise<ChallTestSrv> {
  const dns = await freePort();
  const mgmt = await freePort();
  const p = run('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-management', `127.0.0.1:${mgmt}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv6', '']);
  await waitForLine(p, /Starting management server/, 'pebble-challtestsrv');
  const post = async (what: string, body: unknown) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await fetch(`http://127.0.0.1:${mgmt}/${what}`, { method: 'POST', body: JSON.stringify(body) });
        if (r.status !== 200) throw new Error(`challtestsrv ${what}: ${r.status} ${await r.text()}`);
        return;
      } catch (err) {
        if (attempt > 40) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const fqdn = (n: string) => (n.endsWith('.') ? n : n + '.');
  return {
    dnsServer: `127.0.0.1:${dns}`,
    setTxt: (name, value) => post('set-txt', { host: fqdn(name), value }),
    clearTxt: (name) => post('clear-txt', { host: fqdn(name) }),
    setA: async (name, addresses) => {
      await post('clear-a', { host: fqdn(name) });
      await post('add-a', { host: fqdn(name), addresses });
    },
    stop: () => p.stop(),
  };
}

export interface Pebble {
  /** The ACME directory, https://127.0.0.1:<port>/dir */
  readonly directoryUrl: string;
  /** PEM file of the certificate pebble serves its API with (for TENANTRY_ACME_CA_FILE). */
  readonly caFile: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** The port its HTTP-01 validator connects to: the platform's HTTP port. */
  readonly httpPort: number;
  /** DNS server (host:port) it resolves names with. */
  readonly dnsServer: string;
  /** Validity of the certificates it issues. */
  readonly certificateValiditySeconds?: number;
  readonly workDir: string;
}

export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  const listen = await freePort();
  const mgmt = await freePort();
  const tlsPort = await freePort();
  // Its own API certificate: a self-signed CA for 127.0.0.1, trusted by the platform through TENANTRY_ACME_CA_FILE.
  const pair = await createSelfSigned({ names: ['localhost', '127.0.0.1'], days: 2, ca: true });
  const certFile = path.join(o.workDir, 'pebble-cert.pem');
  const keyFile = path.join(o.workDir, 'pebble-key.pem');
  fs.writeFileSync(certFile, pair.cert);
  fs.writeFileSync(keyFile, pair.key, { mode: 0o600 });
  const configFile = path.join(o.workDir, 'pebble-config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: certFile,
        privateKey: keyFile,
        httpPort: o.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(o.certificateValiditySeconds ? { certificateValidityPeriod: o.certificateValiditySeconds } : {}),
      },
    }),
  );
  const p = run('pebble', ['-config', configFile, '-dnsserver', o.dnsServer, '-strict=false'], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
    PEBBLE_AUTHZREUSE: '0',
  });
  await waitForLine(p, /ACME directory available|Listening on/, 'pebble');
  return { directoryUrl: `https://127.0.0.1:${listen}/dir`, caFile: certFile, output: p.output, stop: () => p.stop() };
}
