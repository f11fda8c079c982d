// Signing keys for plugins: HKDF-SHA256 of the master secret, per tenant and
// plugin. The worker gets only this derived key (over the capability channel at
// start) and derives per-purpose keys from it (runtime/plugin-keys.ts): the
// master secret never leaves the platform, and one tenant's keys say nothing
// about another's.
import { hkdfSync } from 'node:crypto';

const SALT = Buffer.from('tenantry plugin keys v1');

export function pluginKeyFor(secret: string, tenantId: string, plugin: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), SALT, Buffer.from(`tenant\0${tenantId}\0plugin\0${plugin}`), 32));
}
