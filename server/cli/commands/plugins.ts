// tenantry plugins enable|disable <name> --tenant <id> [--config JSON]
// tenantry plugins list [--tenant <id>]   (without --tenant: the installed plugins)
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';

const USAGE = 'tenantry plugins enable|disable <name> --tenant <id> [--config JSON] | list [--tenant <id>]';

interface TenantPlugin {
  name: string;
  enabled: boolean;
  config: unknown;
}

export async function pluginsCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    tenant: { type: 'string' },
    config: { type: 'string' },
  });
  const [sub, name] = positionals;
  const opts = clientOptions(values, process.env);
  if (sub === 'list') {
    if (!values.tenant) {
      const r = await apiRequest<{ plugins: Array<{ name: string; version: string; description: string }> }>(opts, '/api/v1/plugins');
      if (values.json) print(JSON.stringify(r.plugins, null, 2));
      else for (const p of r.plugins) print(`${p.name}\t${p.version}\t${p.description}`);
      return;
    }
    const r = await apiRequest<{ plugins: TenantPlugin[] }>(opts, `/api/v1/tenants/${encodeURIComponent(values.tenant)}/plugins`);
    if (values.json) print(JSON.stringify(r.plugins, null, 2));
    else for (const p of r.plugins) print(`${p.name}\t${p.enabled ? 'enabled' : 'disabled'}\t${JSON.stringify(p.config)}`);
    return;
  }
  if (sub !== 'enable' && sub !== 'disable') throw new CliError(`unknown subcommand ${sub ?? '(none)'}; usage: ${USAGE}`, 2);
  if (!name) throw new CliError(`a plugin name is required; usage: ${USAGE}`, 2);
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  const path = `/api/v1/tenants/${encodeURIComponent(tenant)}/plugins/${encodeURIComponent(name)}`;
  if (sub === 'disable') {
    await apiRequest(opts, path, { method: 'DELETE' });
    print(`${name} disabled for ${tenant} (its data is kept)`);
    return;
  }
  let config: unknown = {};
  if (values.config !== undefined) {
    try {
      config = JSON.parse(values.config);
    } catch {
      throw new CliError('--config must be JSON, e.g. --config \'{"title": "News"}\'', 2);
    }
  }
  const r = await apiRequest<TenantPlugin>(opts, path, { method: 'PUT', json: { config } });
  if (values.json) print(JSON.stringify(r, null, 2));
  else print(`${r.name} enabled for ${tenant}`);
}
