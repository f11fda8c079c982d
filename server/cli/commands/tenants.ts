// tenantry tenants create <id> [--domain D]... | list | show <id> | delete <id>
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand } from '../args.js';

const USAGE = 'tenantry tenants create <id> [--domain D]... | list | show <id> | delete <id>';

interface TenantJson {
  id: string;
  url: string;
  domains: { domain: string; verified: boolean }[];
  liveDeployId: string | null;
}

export async function tenantsCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, { domain: { type: 'string', multiple: true } });
  const client = clientOptions(values, process.env);
  const [sub, id] = positionals;
  const needId = () => {
    if (!id) throw new CliError(`missing tenant id; usage: ${USAGE}`, 2);
    return id;
  };
  switch (sub) {
    case 'create': {
      const t = await apiRequest<TenantJson>(client, '/api/v1/tenants', { method: 'POST', json: { id: needId(), domains: values.domain } });
      print(values.json ? JSON.stringify(t, null, 2) : `created ${t.id}: ${t.url}`);
      return;
    }
    case 'list': {
      const { tenants } = await apiRequest<{ tenants: TenantJson[] }>(client, '/api/v1/tenants');
      if (values.json) print(JSON.stringify(tenants, null, 2));
      else for (const t of tenants) print(`${t.id.padEnd(24)} ${t.url.padEnd(40)} ${t.liveDeployId ?? '-'}`);
      return;
    }
    case 'show': {
      const t = await apiRequest<TenantJson>(client, `/api/v1/tenants/${encodeURIComponent(needId())}`);
      print(JSON.stringify(t, null, 2));
      return;
    }
    case 'delete': {
      await apiRequest(client, `/api/v1/tenants/${encodeURIComponent(needId())}`, { method: 'DELETE' });
      print(`deleted ${id}`);
      return;
    }
    default:
      throw new CliError(`unknown subcommand ${sub ?? '(none)'}; usage: ${USAGE}`, 2);
  }
}
