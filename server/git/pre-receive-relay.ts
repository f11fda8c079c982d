// Runs as each tenant repository's pre-receive hook (see repositories.ts), in
// the environment `git http-backend` passed down: it hands the ref updates and
// the quarantine folders to the platform, prints the platform's lines (the
// pusher sees them as `remote:` lines) and exits with the platform's verdict.
// Protocol, one line each: `> text` to print, `= N` the exit status.
import http from 'node:http';

const ADDRESS = process.env.TENANTRY_HOOK_ADDRESS ?? '';
const TICKET = process.env.TENANTRY_PUSH_TICKET ?? '';

function fail(message: string): never {
  process.stdout.write(`${message}\n`);
  process.exit(1);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseUpdates(text: string) {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [oldSha = '', newSha = '', ref = ''] = l.trim().split(/\s+/);
      return { oldSha, newSha, ref };
    });
}

function connection(): Pick<http.RequestOptions, 'socketPath' | 'host' | 'port'> {
  const tcp = /^127\.0\.0\.1:(\d+)$/.exec(ADDRESS);
  return tcp ? { host: '127.0.0.1', port: Number(tcp[1]) } : { socketPath: ADDRESS };
}

async function main(): Promise<void> {
  if (!ADDRESS || !TICKET) fail('Tenantry: this push did not come through the platform.');
  const body = JSON.stringify({
    ticket: TICKET,
    updates: parseUpdates(await readStdin()),
    objectDirectory: process.env.GIT_OBJECT_DIRECTORY || undefined,
    alternateObjectDirectories: process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES || undefined,
    quarantinePath: process.env.GIT_QUARANTINE_PATH || undefined,
  });
  const status = await new Promise<number>((resolve) => {
    const req = http.request(
      { ...connection(), method: 'POST', path: '/pre-receive', headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let pending = '';
        let exit = 1;
        const take = (line: string) => {
          if (line.startsWith('> ')) process.stdout.write(line.slice(2) + '\n');
          else if (line.startsWith('= ')) exit = Number(line.slice(2)) === 0 ? 0 : 1;
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            take(pending.slice(0, nl));
            pending = pending.slice(nl + 1);
          }
        });
        res.on('end', () => {
          if (pending) take(pending);
          resolve(exit);
        });
        res.on('error', () => resolve(1));
      },
    );
    req.on('error', (err) => {
      process.stdout.write(`Tenantry: the platform did not answer (${err.message}); the push was refused.\n`);
      resolve(1);
    });
    req.end(body);
  });
  process.exit(status);
}

main().catch((err: Error) => fail(`Tenantry: ${err.message}`));
