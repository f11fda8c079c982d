// The few control-API calls the benchmark makes: create and delete tenants,
// upload a site as tar.gz, or by manifest (what `tenantry deploy` of a folder does).
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

/** What a manifest deploy cost: time from the manifest to the live answer, and the bytes sent. */
export interface ManifestDeployTiming {
  ms: number;
  /** Request bodies: the manifest and the uploaded files. */
  bytesSent: number;
  /** Of those, file contents. */
  fileBytesSent: number;
  uploaded: number;
  reused: number;
}

export class ManifestClient {
  constructor(
    private readonly origin: string,
    private readonly token: string,
    private readonly platformHost = 'localhost',
  ) {}

  private call(method: string, path: string, body: Buffer | string | undefined, contentType?: string): Promise<ApiAnswer> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (contentType) headers['Content-Type'] = contentType;
    return request(this.origin, { method, path, host: this.platformHost, headers, body });
  }

  /** POST the manifest, PUT what is required (`read` gives a content's bytes), finalize. */
  async deploy(id: string, files: Record<string, string>, read: (sha256: string) => Buffer): Promise<ManifestDeployTiming> {
    const started = performance.now();
    const manifest = JSON.stringify({ files });
    let bytesSent = Buffer.byteLength(manifest);
    let fileBytesSent = 0;
    const created = await this.call('POST', `/api/v1/tenants/${id}/deploys`, manifest, 'application/json');
    let final = created;
    if (created.status === 202) {
      const pending = JSON.parse(created.body) as { id: string; required: string[] };
      // Four uploads at a time, as `tenantry deploy` sends them.
      let next = 0;
      const uploader = async () => {
        while (next < pending.required.length) {
          const sha = pending.required[next++]!;
          const body = read(sha);
          const put = await this.call('PUT', `/api/v1/tenants/${id}/deploys/${pending.id}/files/${sha}`, body, 'application/octet-stream');
          if (put.status !== 200) throw new Error(`uploading ${sha}: ${put.status} ${put.body}`);
          bytesSent += body.length;
          fileBytesSent += body.length;
        }
      };
      await Promise.all([uploader(), uploader(), uploader(), uploader()]);
      final = await this.call('POST', `/api/v1/tenants/${id}/deploys/${pending.id}/finalize`, undefined);
    }
    const ms = performance.now() - started;
    if (final.status !== 201) throw new Error(`manifest deploy of ${id}: ${final.status} ${final.body}`);
    const result = JSON.parse(final.body) as { uploaded: number; reused: number };
    return { ms, bytesSent, fileBytesSent, uploaded: result.uploaded, reused: result.reused };
  }
}

/** A folder as tar.gz, in memory. */
export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tar.c({ gzip: true, cwd: dir, portable: true }, fs.readdirSync(dir));
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
