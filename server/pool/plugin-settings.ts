// Which plugins each tenant has enabled, as the pool sees them. Where the
// settings are kept is not the pool's business: it is handed a
// PluginSettingsSource, reads a tenant's list when it first needs it and keeps
// it until told the tenant's settings changed (WorkerPool.pluginSettingsChanged).
// The cached set answers the edge's per-request question "is this path a
// plugin's?" with one Map lookup.
import { parseLaunchPlugins, type LaunchPlugin } from '../launch/plugin-launch.js';

/** One plugin a tenant has switched on, with its config (checked by the plugin's own schema in the worker). */
export type EnabledPlugin = LaunchPlugin;

export interface PluginSettingsSource {
  /** The tenant's enabled plugins. Synchronous and cheap: it is read on a worker start and after each change. */
  enabledFor(tenantId: string): readonly EnabledPlugin[];
}

/** No tenant has any plugin: the default until plugin settings are stored. */
export const NO_PLUGIN_SETTINGS: PluginSettingsSource = { enabledFor: () => [] };

/** A tenant's enabled plugins, sorted by name. */
export interface PluginSet {
  readonly list: readonly EnabledPlugin[];
  readonly names: ReadonlySet<string>;
  /** Canonical JSON of the list: equal keys, identical workers. Part of a worker's identity. */
  readonly key: string;
  /** Set when the source's list breaks the launch contract; the list is then empty and workers refuse to start. */
  readonly problem?: string;
}

export const EMPTY_PLUGIN_SET: PluginSet = { list: [], names: new Set(), key: '[]' };

/** JSON with object keys sorted, so equal configs stored in another key order compare equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function pluginSetOf(enabled: readonly EnabledPlugin[]): PluginSet {
  if (enabled.length === 0) return EMPTY_PLUGIN_SET;
  let list: EnabledPlugin[];
  try {
    list = parseLaunchPlugins(enabled.map((p) => ({ name: p.name, config: p.config })));
  } catch (err) {
    const problem = (err as Error).message;
    return { list: [], names: new Set(), key: `!${problem}`, problem };
  }
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { list, names: new Set(list.map((p) => p.name)), key: canonicalJson(list) };
}

/**
 * The plugin whose public routes answer this request target ("/_<name>",
 * "/_<name>/..." or either with a query), if the set has it. Pure; the name
 * is compared as sent (an encoded "%5F" is not "_").
 */
export function publicPluginOf(url: string, set: PluginSet): string | undefined {
  if (set.names.size === 0 || url.charCodeAt(0) !== 0x2f || url.charCodeAt(1) !== 0x5f) return undefined;
  let end = url.length;
  for (let i = 2; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      end = i;
      break;
    }
  }
  const name = url.slice(2, end);
  return set.names.has(name) ? name : undefined;
}

/** The source's answers, per tenant, until a change is signalled. */
export class PluginSettings {
  private readonly sets = new Map<string, PluginSet>();

  constructor(
    private readonly source: PluginSettingsSource,
    private readonly onProblem: (tenantId: string, problem: string) => void = () => {},
  ) {}

  of(tenantId: string): PluginSet {
    let set = this.sets.get(tenantId);
    if (set) return set;
    let enabled: readonly EnabledPlugin[];
    try {
      enabled = this.source.enabledFor(tenantId);
    } catch (err) {
      // Not kept: the next use asks again. Meanwhile the tenant's workers refuse to start.
      const problem = `the plugin settings could not be read: ${(err as Error).message}`;
      this.onProblem(tenantId, problem);
      return { list: [], names: new Set(), key: `!${problem}`, problem };
    }
    set = pluginSetOf(enabled);
    if (set.problem) this.onProblem(tenantId, set.problem);
    this.sets.set(tenantId, set);
    return set;
  }

  forget(tenantId: string): void {
    this.sets.delete(tenantId);
  }
}
