// The pool's PluginSettingsSource, read from the tenant_plugins table.
import type { Store } from '../db/store.js';
import type { JsonValue } from '../launch/plugin-launch.js';
import type { EnabledPlugin, PluginSettingsSource } from '../pool/plugin-settings.js';

export function storedPluginSettings(store: Store): PluginSettingsSource {
  return {
    enabledFor: (tenantId: string): readonly EnabledPlugin[] =>
      store.plugins
        .forTenant(tenantId)
        .filter((p) => p.enabled)
        .map((p) => ({ name: p.name, config: p.config as JsonValue })),
  };
}
