// Enabling, reconfiguring and disabling a tenant's plugins. A change is stored,
// then the pool is told (pluginSettingsChanged) and a worker with the new
// settings is started and health-checked; when it cannot start, the stored
// row is put back as it was and the old worker (if any) goes on serving.
import type { Store, TenantPluginRecord } from '../db/store.js';
import type { SiteRegistry } from '../static/site-registry.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { AppError } from '../errors.js';
import { MAX_PLUGIN_CONFIG_BYTES, MAX_PLUGINS } from '../launch/plugin-launch.js';
import { configProblem, type PluginCatalogue } from './catalogue.js';

export interface PluginServiceDeps {
  readonly store: Store;
  readonly catalogue: PluginCatalogue;
  readonly workers: Pick<WorkerPool, 'pluginSettingsChanged' | 'acquire' | 'release'>;
  readonly sites: Pick<SiteRegistry, 'get'>;
}

/** A tenant's plugin as the API shows it. */
export interface TenantPluginView {
  readonly name: string;
  readonly enabled: boolean;
  readonly config: unknown;
  readonly updatedAt: string;
}

export const viewOf = (r: TenantPluginRecord): TenantPluginView => ({ name: r.name, enabled: r.enabled, config: r.config, updatedAt: r.updatedAt });

export class PluginService {
  /** One change at a time per tenant: a roll-back must put back what the same change replaced. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly d: PluginServiceDeps) {}

  private serially<T>(tenantId: string, op: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(tenantId) ?? Promise.resolve()).then(op, op);
    const tail = run.catch(() => {});
    this.queues.set(tenantId, tail);
    void tail.then(() => {
      if (this.queues.get(tenantId) === tail) this.queues.delete(tenantId);
    });
    return run;
  }

  list(tenantId: string): TenantPluginView[] {
    return this.d.store.plugins.forTenant(tenantId).map(viewOf);
  }

  /** Enables or reconfigures; resolves once the tenant's worker serves the new settings. */
  enable(tenantId: string, name: string, config: unknown, actor: string): Promise<TenantPluginView> {
    return this.serially(tenantId, () => this.enableNow(tenantId, name, config, actor));
  }

  disable(tenantId: string, name: string, actor: string): Promise<void> {
    return this.serially(tenantId, () => this.disableNow(tenantId, name, actor));
  }

  private async enableNow(tenantId: string, name: string, config: unknown, actor: string): Promise<TenantPluginView> {
    const manifest = await this.d.catalogue.manifest(name);
    if (!manifest) throw new AppError('plugin_not_found', `No plugin named "${name}" is installed.`);
    if (Buffer.byteLength(JSON.stringify(config ?? null)) > MAX_PLUGIN_CONFIG_BYTES) {
      throw new AppError('plugin_config_invalid', `config: larger than ${MAX_PLUGIN_CONFIG_BYTES / 1024} KiB as JSON.`, { field: 'config' });
    }
    const checked = configProblem(manifest, config);
    if (!checked.ok) throw new AppError('plugin_config_invalid', `The config of "${name}" was refused: ${checked.problem}.`, { field: checked.field ?? null });
    const previous = this.d.store.plugins.get(tenantId, name);
    const others = this.d.store.plugins.forTenant(tenantId).filter((p) => p.enabled && p.name !== name).length;
    if (others + 1 > MAX_PLUGINS) throw new AppError('conflict', `A tenant may enable at most ${MAX_PLUGINS} plugins.`);
    // Stored as sent (the schema's defaults are applied again in the worker).
    this.d.store.plugins.put(tenantId, name, config, true);
    await this.apply(tenantId, name, previous, true);
    this.d.store.audit.record({ actor, action: previous?.enabled ? 'plugin.configure' : 'plugin.enable', tenantId, detail: { plugin: name, version: manifest.version } });
    return viewOf(this.d.store.plugins.get(tenantId, name)!);
  }

  /** Disables; the row (config) and the plugin's data folder are kept. */
  private async disableNow(tenantId: string, name: string, actor: string): Promise<void> {
    const previous = this.d.store.plugins.get(tenantId, name);
    if (!previous?.enabled) throw new AppError('plugin_not_enabled', `The plugin "${name}" is not enabled for this tenant.`);
    this.d.store.plugins.disable(tenantId, name);
    await this.apply(tenantId, name, previous, false);
    this.d.store.audit.record({ actor, action: 'plugin.disable', tenantId, detail: { plugin: name } });
  }

  /** Tells the pool; on a start failure puts the row back and answers 422 with the reason. */
  private async apply(tenantId: string, name: string, previous: TenantPluginRecord | undefined, verify: boolean): Promise<void> {
    try {
      await this.d.workers.pluginSettingsChanged(tenantId);
      // With no worker running the pool starts none until a request comes: start one now, so a
      // config the plugin refuses at start is reported to whoever set it, not to the next visitor.
      const live = verify ? this.d.sites.get(tenantId) : undefined;
      if (live) this.d.workers.release(await this.d.workers.acquire(tenantId, live));
    } catch (err) {
      this.d.store.plugins.restore(tenantId, name, previous);
      await this.d.workers.pluginSettingsChanged(tenantId).catch(() => {});
      throw new AppError('plugin_start_failed', `The tenant's worker did not start with the new settings of "${name}": ${(err as Error).message}`);
    }
  }
}
