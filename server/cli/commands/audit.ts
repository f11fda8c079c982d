// tenantry audit [--tenant <id>] [--limit N]: the audit trail, newest first.
import { apiRequest, clientOptions, CliError } from '../api-client.js';
import { parseCommand } from '../args.js';

const USAGE = 'tenantry audit [--tenant <id>] [--limit N]';

interface AuditItem {
  at: string;
  actor: string;
  actorName: string | null;
  address: string | null;
  action: string;
  tenantId: string | null;
  outcome: 'success' | 'failure';
  code: string | null;
  detail: Record<string, unknown>;
}

export async function auditCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values } = parseCommand(args, { tenant: { type: 'string' }, limit: { type: 'string' } });
  if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new CliError(`--limit must be a number; usage: ${USAGE}`, 2);
  const query = new URLSearchParams();
  if (values.tenant) query.set('tenant', values.tenant);
  if (values.limit) query.set('limit', values.limit);
  const qs = query.size ? `?${query}` : '';
  const { entries } = await apiRequest<{ entries: AuditItem[] }>(clientOptions(values, process.env), `/api/v1/audit${qs}`);
  if (values.json) {
    print(JSON.stringify(entries, null, 2));
    return;
  }
  for (const e of entries) {
    const who = e.actorName ? `${e.actor} (${e.actorName})` : e.actor;
    const outcome = e.outcome === 'success' ? 'ok' : `FAILED ${e.code ?? ''}`.trim();
    print(`${e.at.slice(0, 19).replace('T', ' ')}  ${(e.tenantId ?? '-').padEnd(12)} ${e.action.padEnd(18)} ${outcome.padEnd(10)} ${who}  ${e.address ?? '-'}`.trimEnd());
  }
}
