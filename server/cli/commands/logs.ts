// tenantry logs --tenant <id> [--lines N]: the tenant's site log, newest last.
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand, requireFlag } from '../args.js';

const USAGE = 'tenantry logs --tenant <id> [--lines N]';

export async function logsCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values, positionals } = parseCommand(args, { tenant: { type: 'string' }, lines: { type: 'string' } });
  if (positionals.length) throw new CliError(`unexpected argument ${positionals[0]}; usage: ${USAGE}`, 2);
  const tenant = requireFlag(values.tenant, 'tenant', USAGE);
  const lines = values.lines ?? '100';
  if (!/^[1-9]\d*$/.test(lines)) throw new CliError(`--lines must be a positive whole number; usage: ${USAGE}`, 2);
  const answer = await apiRequest<{ lines: string[] }>(
    clientOptions(values, process.env),
    `/api/v1/tenants/${encodeURIComponent(tenant)}/logs?lines=${lines}`,
  );
  if (values.json) print(JSON.stringify(answer.lines, null, 2));
  else for (const line of answer.lines) print(line);
}
