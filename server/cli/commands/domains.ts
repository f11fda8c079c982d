// tenantry domains add|verify|remove|list|show|certificate <domain> --tenant <id>
import fs from 'node:fs';
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';

const USAGE =
  'tenantry domains add <domain> [--redirect to-apex|to-www] | verify <domain> [--method txt|http] | remove <domain> | list | show <domain> | certificate <domain> --cert FILE --key FILE  (all with --tenant <id>)';

interface DomainJson {
  domain: string;
  verified: boolean;
  redirect: string;
  certificate: { status: string; expiresAt?: string; error?: string };
  verification?: { txt: { name: string; value: string }; http: { url: string; body: string } };
}

function certificateLine(c: DomainJson['certificate']): string {
  if (c.status === 'issued' || c.status === 'uploaded') return `${c.status} (expires ${c.expiresAt})${c.error ? `, last renewal failed: ${c.error}` : ''}`;
  if (c.status === 'failed') return `failed: ${c.error}`;
  return c.status;
}

function describe(d: DomainJson, tenant: string): string[] {
  const lines = [`${d.domain}: ${d.verified ? 'verified' : 'pending (serves nothing until proven)'}; certificate ${certificateLine(d.certificate)}${d.redirect !== 'none' ? `; redirect ${d.redirect}` : ''}`];
  if (d.verification) {
    lines.push('Prove it with either:');
    lines.push(`  a DNS TXT record  ${d.verification.txt.name}  "${d.verification.txt.value}"`);
    lines.push(`  or, with the name's A/AAAA record pointing here, nothing more: ${d.verification.http.url} answers "${d.verification.http.body}"`);
    lines.push(`then: tenantry domains verify ${d.domain} --tenant ${tenant}`);
  }
  return lines;
}

export async function domainsCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    tenant: { type: 'string' },
    redirect: { type: 'string' },
    method: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  });
  const [sub, domain] = positionals;
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  const client = clientOptions(values, process.env);
  const base = `/api/v1/tenants/${encodeURIComponent(tenant)}/domains`;
  const needDomain = () => {
    if (!domain) throw new CliError(`missing domain; usage: ${USAGE}`, 2);
    return `${base}/${encodeURIComponent(domain)}`;
  };
  const show = (d: DomainJson) => print(values.json ? JSON.stringify(d, null, 2) : describe(d, tenant).join('\n'));
  switch (sub) {
    case 'add': {
      needDomain();
      show(await apiRequest<DomainJson>(client, base, { method: 'POST', json: { domain, ...(values.redirect ? { redirect: values.redirect } : {}) } }));
      return;
    }
    case 'verify':
      show(await apiRequest<DomainJson>(client, `${needDomain()}/verify`, { method: 'POST', json: values.method ? { method: values.method } : {} }));
      return;
    case 'remove':
      await apiRequest(client, needDomain(), { method: 'DELETE' });
      print(`removed ${domain}`);
      return;
    case 'show':
      show(await apiRequest<DomainJson>(client, needDomain()));
      return;
    case 'list': {
      const { domains } = await apiRequest<{ domains: DomainJson[] }>(client, base);
      if (values.json) print(JSON.stringify(domains, null, 2));
      else for (const d of domains) print(`${d.domain.padEnd(40)} ${(d.verified ? 'verified' : 'pending').padEnd(9)} ${certificateLine(d.certificate)}`);
      return;
    }
    case 'certificate': {
      const path = needDomain();
      const read = (file: string | undefined, flag: string) => {
        try {
          return fs.readFileSync(requireFlag(file, flag, USAGE), 'utf8');
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw new CliError(`cannot read --${flag} ${file}: ${(err as Error).message}`, 2);
        }
      };
      show(await apiRequest<DomainJson>(client, `${path}/certificate`, { method: 'PUT', json: { cert: read(values.cert, 'cert'), key: read(values.key, 'key') } }));
      return;
    }
    default:
      throw new CliError(`unknown subcommand ${sub ?? '(none)'}; usage: ${USAGE}`, 2);
  }
}
