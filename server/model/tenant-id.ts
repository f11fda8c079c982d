// The tenant id pattern from the contract. It doubles as a Unix user name
// (`tn-<id>`), a folder name and a DNS label, so it is strict.
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/;

export function isValidTenantId(id: unknown): id is string {
  return typeof id === 'string' && TENANT_ID_PATTERN.test(id);
}
