// tenantry tokens create --tenant <id> [--scope deploy,read,plugins] [--name N]
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';

const USAGE = 'tenantry tokens create --tenant <id> [--scope deploy,read,plugins] [--name N]';

export async function tokensCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    tenant: { type: 'string' },
    scope: { type: 'string', multiple: true },
    name: { type: 'string' },
  });
  if (positionals[0] !== 'create') throw new CliError(`unknown subcommand ${positionals[0] ?? '(none)'}; usage: ${USAGE}`, 2);
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  const scopes = values.scope?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const t = await apiRequest<{ token: string; id: string; scopes: string[] }>(
    clientOptions(values, process.env),
    `/api/v1/tenants/${encodeURIComponent(tenant)}/tokens`,
    { method: 'POST', json: { name: values.name ?? 'cli', ...(scopes ? { scopes } : {}) } },
  );
  if (values.json) print(JSON.stringify(t, null, 2));
  else print(t.token);
}
