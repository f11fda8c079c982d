// The few control-API calls the benchmark makes: create and delete tenants,
// upload a site as tar.gz (the same path as `tenantry deploy`).
import fs from 'node:fs';
import http from 'node:http';
import * as tar from 'tar';

export interface ApiAnswer {
  status: number;
  body: string;
  headers?: http.IncomingHttpHeaders;
}

export function request(origin: string, opts: { method?: string; path: string; host: string; headers?: Record<string, string>; body?: Buffer | string }): Promise<ApiAnswer & { firstByteMs: number }> {
  const u = new URL(origin);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers: { Host: opts.host, ...opts.headers }, agent: false },
      (res) => {
        const firstByteMs = performance.now() - started;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, firstByteMs }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export class TenantryApi {
  constructor(
    private readonly origin: string,
    private readonly token: string,
    private readonly platformHost = 'localhost',
  ) {}

  private async call(method: string, path: string, body?: Buffer | string, contentType = 'application/json'): Promise<ApiAnswer> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['Content-Type'] = contentType;
    return request(this.origin, { method, path, host: this.platformHost, headers, body });
  }

  async createTenant(id: string): Promise<void> {
    const r = await this.call('POST', '/api/v1/tenants', JSON.stringify({ id }));
    if (r.status !== 201 && r.status !== 409) throw new Error(`creating tenant ${id}: ${r.status} ${r.body}`);
  }

  async setLimits(id: string, limits: Record<string, number>): Promise<void> {
    const r = await this.call('PATCH', `/api/v1/tenants/${id}`, JSON.stringify({ limits }));
    if (r.status !== 200) throw new Error(`setting limits of ${id}: ${r.status} ${r.body}`);
  }

  async deleteTenant(id: string): Promise<void> {
    await this.call('DELETE', `/api/v1/tenants/${id}`);
  }

  /** Uploads a packed site; resolves when the API says it is live. */
  async deployArchive(id: string, archive: Buffer): Promise<{ ms: number; answer: ApiAnswer }> {
    const started = performance.now();
    const answer = await this.call('POST', `/api/v1/tenants/${id}/deploys`, archive, 'application/gzip');
    const ms = performance.now() - started;
    if (answer.status !== 201) throw new Error(`deploying ${id}: ${answer.status} ${answer.body}`);
    return { ms, answer };
  }
}

/** A folder as tar.gz, in memory. */
export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tar.c({ gzip: true, cwd: dir, portable: true }, fs.readdirSync(dir));
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
