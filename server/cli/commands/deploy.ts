// tenantry deploy [DIR|ARCHIVE] --tenant <id> [--message M] [--include-node-modules] [--tar]
// A folder goes by manifest: its paths and SHA-256s first, then only the files
// the server does not have yet (manifest-upload.ts). With --tar, with symbolic
// links in it, or against a server without manifest deploys, it is packed into a
// tar.gz instead; an archive file is sent as it is. Uploads stream from disk,
// with a progress bar when stderr is a terminal.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import cliProgress from 'cli-progress';
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';
import { packSite } from '../pack-site.js';
import { deployByManifest, digestSite, type ManifestDeployAnswer } from '../manifest-upload.js';

const USAGE = 'tenantry deploy [DIR|ARCHIVE] --tenant <id> [--message M] [--include-node-modules] [--tar]';

interface DeployJson {
  id: string;
  live: boolean;
  url: string;
  files: number;
  bytes: number;
  rules?: { redirects: number; headers: number };
  /** Lines of _redirects/_headers left out (the deploy is live without them). */
  warnings?: { file: string; line: number; message: string }[];
}

function warningLine(w: { file: string; line: number; message: string }): string {
  return `warning: ${w.file}${w.line > 0 ? ` line ${w.line}` : ''}: ${w.message}`;
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The file as an upload body, ticking a progress bar on a terminal. */
function uploadBody(file: string): { body: ReadableStream; done: () => void } {
  const total = fs.statSync(file).size;
  const bar =
    process.stderr.isTTY && total > 0
      ? new cliProgress.SingleBar(
          { stream: process.stderr, format: 'uploading [{bar}] {percentage}% {value}/{total} bytes', hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(total, 0);
  let sent = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      bar?.update(sent);
      cb(null, chunk);
    },
  });
  const stream = fs.createReadStream(file).pipe(meter);
  return { body: Readable.toWeb(stream) as ReadableStream, done: () => bar?.stop() };
}

function printResult(result: DeployJson, print: (s: string) => void, transfer?: string): void {
  print(`deployed ${result.id} (${result.files} files, ${humanBytes(result.bytes)}${transfer ? `; ${transfer}` : ''}): ${result.url}`);
  const rules = result.rules;
  if (rules && (rules.redirects || rules.headers)) print(`rules: ${rules.redirects} in _redirects, ${rules.headers} path blocks in _headers`);
  // Part of the result (stdout): the deploy is live, these lines of it were left out.
  for (const w of result.warnings ?? []) print(warningLine(w));
}

export async function deployCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    tenant: { type: 'string' },
    message: { type: 'string', short: 'm' },
    'include-node-modules': { type: 'boolean' },
    tar: { type: 'boolean' },
  });
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  if (positionals.length > 1) throw new CliError(`give one folder or archive; usage: ${USAGE}`, 2);
  const target = path.resolve(positionals[0] ?? '.');
  const st = fs.statSync(target, { throwIfNoEntry: false });
  if (!st) throw new CliError(`${target} does not exist; usage: ${USAGE}`, 2);

  if (st.isDirectory() && !values.tar) {
    const digest = digestSite(target, { includeNodeModules: values['include-node-modules'] });
    if (digest.count === 0 && !digest.hasLinks) throw new CliError(`cannot pack ${target}: ${target} holds no files to deploy`);
    if (!digest.hasLinks) {
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar({ stream: process.stderr, format: 'uploading [{bar}] {percentage}% {value}/{total} bytes', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
        : undefined;
      let sent = 0;
      let result: ManifestDeployAnswer | undefined;
      try {
        result = await deployByManifest(
          clientOptions(values, process.env),
          tenant,
          digest,
          values.message,
          (_count, bytes) => bar?.start(bytes, 0),
          (bytes) => bar?.update((sent += bytes)),
        );
      } finally {
        bar?.stop();
      }
      if (result) {
        if (values.json) print(JSON.stringify(result, null, 2));
        else printResult(result, print, `${result.uploaded} uploaded, ${result.reused} unchanged`);
        return;
      }
    }
  }

  let archive = target;
  let tmpDir: string | undefined;
  try {
    if (st.isDirectory()) {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-deploy-'));
      archive = path.join(tmpDir, 'site.tar.gz');
      try {
        await packSite(target, archive, { includeNodeModules: values['include-node-modules'] });
      } catch (err) {
        throw new CliError(`cannot pack ${target}: ${(err as Error).message}`);
      }
    } else if (!st.isFile()) {
      throw new CliError(`${target} is neither a folder nor an archive file`, 2);
    }
    const query = values.message ? `?message=${encodeURIComponent(values.message)}` : '';
    const upload = uploadBody(archive);
    let result: DeployJson;
    try {
      result = await apiRequest<DeployJson>(clientOptions(values, process.env), `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys${query}`, {
        method: 'POST',
        body: upload.body,
        headers: { 'Content-Type': isGzip(archive) ? 'application/gzip' : 'application/x-tar' },
      });
    } finally {
      upload.done();
    }
    if (values.json) print(JSON.stringify(result, null, 2));
    else printResult(result, print);
  } finally {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
