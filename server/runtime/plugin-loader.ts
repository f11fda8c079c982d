// Loads the tenant's enabled plugins inside its worker: imports each one's
// compiled code from the platform's dist/plugins/<name>/ (by name, never by a
// path it was given), checks the tenant's config with the manifest's schema,
// gives it its own data folder and a logger, and runs onWorkerStart. The first
// failure throws a PluginLoadError naming the plugin; the worker then does not
// start.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Router } from 'express';
import type { Plugin, PluginContext, PluginLogger } from '../../plugins/plugin-api.js';
import { pluginEntry, type LaunchPlugin } from '../launch/plugin-names.js';
import { PLUGINS_ROOT } from '../launch/entries.js';
import { backgroundWork, mailCapability, pluginKeys, redeemStartTicket, type CapabilityChannel } from './capability-client.js';

/** A started plugin, ready to be mounted. */
export interface LoadedPlugin {
  readonly name: string;
  readonly version: string;
  readonly publicRouter: Router | undefined;
  readonly adminRouter: Router | undefined;
  readonly onWorkerStop: (() => void | Promise<void>) | undefined;
}

export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
}

export interface PluginLoadOptions {
  readonly tenantId: string;
  /** The tenant's data folder (TENANTRY_DATA); each plugin gets <it>/.plugins/<name>/. */
  readonly tenantDataDir: string;
  readonly log: (line: string) => void;
  /** Only tests point elsewhere. */
  readonly pluginsRoot?: string;
  /** The tenant's capability channel (mail, keys); without it plugins get no keys and mail is refused. */
  readonly channel?: CapabilityChannel;
}

/** What the platform gave this worker at start for its plugins. */
interface StartGrant {
  readonly siteUrl: string;
  readonly keys: ReadonlyMap<string, Buffer>;
}

/** Where a plugin keeps its state for the tenant. */
export function pluginDataDir(tenantDataDir: string, name: string): string {
  return path.join(tenantDataDir, '.plugins', name);
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function isPlugin(value: unknown): value is Plugin {
  const p = value as Partial<Plugin> | undefined;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.onWorkerStart === 'function' &&
    typeof p.manifest?.name === 'string' &&
    typeof p.manifest.configSchema?.safeParse === 'function' &&
    (p.onWorkerStop === undefined || typeof p.onWorkerStop === 'function')
  );
}

function pluginLogger(name: string, log: (line: string) => void): PluginLogger {
  const at = (level: string) => (line: string) => log(`plugin ${name}: ${level} ${line}`);
  return { info: at('info'), warn: at('warn'), error: at('error') };
}

async function importPlugin(name: string, root: string): Promise<Plugin> {
  let entry: string;
  try {
    entry = pluginEntry(name, root);
  } catch (err) {
    throw new PluginLoadError((err as Error).message);
  }
  if (!fs.existsSync(entry)) throw new PluginLoadError(`plugin "${name}" is not installed (no ${path.join('dist', 'plugins', name, 'index.js')})`);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  } catch (err) {
    throw new PluginLoadError(`plugin "${name}" failed to load: ${describe(err)}`);
  }
  const plugin = mod.default;
  if (!isPlugin(plugin)) throw new PluginLoadError(`plugin "${name}" does not default-export a plugin (definePlugin({ manifest, onWorkerStart }))`);
  if (plugin.manifest.name !== name) throw new PluginLoadError(`plugin "${name}" calls itself "${plugin.manifest.name}" in its manifest`);
  return plugin;
}

/** Why the config does not fit the schema, as one line: "greeting: Expected string; ...". */
function configProblem(plugin: Plugin, config: unknown): { ok: true; value: unknown } | { ok: false; problem: string } {
  const parsed = plugin.manifest.configSchema.safeParse(config);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues.slice(0, 5).map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  return { ok: false, problem: issues.join('; ') };
}

async function startPlugin(enabled: LaunchPlugin, o: PluginLoadOptions, grant: StartGrant): Promise<LoadedPlugin> {
  const { name } = enabled;
  const plugin = await importPlugin(name, o.pluginsRoot ?? PLUGINS_ROOT);
  const config = configProblem(plugin, enabled.config);
  if (!config.ok) throw new PluginLoadError(`plugin "${name}": its config is not valid: ${config.problem}`);
  if (!path.isAbsolute(o.tenantDataDir)) throw new PluginLoadError(`plugin "${name}": the worker has no data folder (TENANTRY_DATA)`);
  const dataDir = pluginDataDir(o.tenantDataDir, name);
  try {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new PluginLoadError(`plugin "${name}": cannot create its data folder: ${describe(err)}`);
  }
  const context: PluginContext = {
    tenantId: o.tenantId,
    dataDir,
    config: config.value,
    log: pluginLogger(name, o.log),
    mail: mailCapability(o.channel?.socketPath),
    keys: pluginKeys(grant.keys.get(name), name),
    background: backgroundWork(o.channel?.socketPath, name),
    siteUrl: grant.siteUrl,
  };
  let routers;
  try {
    routers = await plugin.onWorkerStart(context);
  } catch (err) {
    throw new PluginLoadError(`plugin "${name}" failed to start: ${describe(err)}`);
  }
  const { publicRouter, adminRouter } = routers ?? {};
  for (const [what, router] of [['publicRouter', publicRouter], ['adminRouter', adminRouter]] as const) {
    if (router !== undefined && typeof router !== 'function') throw new PluginLoadError(`plugin "${name}": onWorkerStart returned a ${what} that is not an Express router`);
  }
  return { name, version: plugin.manifest.version, publicRouter, adminRouter, onWorkerStop: plugin.onWorkerStop?.bind(plugin) };
}

/** Starts the plugins in order; throws a PluginLoadError naming the first that fails. */
export async function loadPlugins(enabled: readonly LaunchPlugin[], o: PluginLoadOptions): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  const grant = enabled.length ? await startGrant(o.channel) : { siteUrl: '', keys: new Map<string, Buffer>() };
  for (const p of enabled) loaded.push(await startPlugin(p, o, grant));
  return loaded;
}

/** Keys and site URL for the plugins, once, before any plugin code runs (the ticket is spent then). */
async function startGrant(channel: CapabilityChannel | undefined): Promise<StartGrant> {
  if (!channel) return { siteUrl: '', keys: new Map() };
  try {
    const answer = await redeemStartTicket(channel);
    return { siteUrl: answer.siteUrl.replace(/\/+$/, ''), keys: new Map(Object.entries(answer.pluginKeys).map(([n, k]) => [n, Buffer.from(k, 'base64')])) };
  } catch (err) {
    throw new PluginLoadError(`the platform's capability channel failed: ${describe(err)}`);
  }
}

/** Runs every onWorkerStop hook; failures are logged, never thrown. */
export async function stopPlugins(plugins: readonly LoadedPlugin[], log: (line: string) => void): Promise<void> {
  await Promise.all(
    plugins.map(async (p) => {
      try {
        await p.onWorkerStop?.();
      } catch (err) {
        log(`plugin ${p.name}: onWorkerStop failed: ${describe(err)}`);
      }
    }),
  );
}
