// The zod-free half of the plugins' launch contract: names, prefixes and where
// a plugin's code is. The worker runtime imports this one: it starts on every
// first request to an idle tenant, and loading the schema library would add
// as much to that start as Express does (plugin-launch.ts checks the list, and
// the runtime loads it only when plugins are enabled).
import path from 'node:path';
import { PLUGINS_ROOT } from './entries.js';

/**
 * A plugin's name is its folder under plugins/. A leading "_" marks a plugin
 * that is never offered to users (test fixtures).
 */
export const PLUGIN_NAME_PATTERN = /^_?[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
/** Names a plugin may not take: `admin` would own the admin prefix below. */
export const RESERVED_PLUGIN_NAMES: ReadonlySet<string> = new Set(['admin']);

export const MAX_PLUGINS = 16;
/** Per plugin, as JSON. */
export const MAX_PLUGIN_CONFIG_BYTES = 16 * 1024;
/** All of a worker's plugins, as JSON: well below the kernel's 128 KiB cap on one variable. */
export const MAX_PLUGINS_JSON_BYTES = 64 * 1024;

/** The variable that carries the list to the runtime; the runtime deletes it before any plugin or tenant code runs. */
export const PLUGINS_ENV = 'TENANTRY_PLUGINS';

export function isValidPluginName(name: unknown): name is string {
  return typeof name === 'string' && PLUGIN_NAME_PATTERN.test(name) && !RESERVED_PLUGIN_NAMES.has(name);
}

/** Public routes of a plugin, on the tenant's domains: /_<name>/... */
export function publicPluginPrefix(name: string): string {
  return `/_${name}`;
}

/**
 * Admin routes of a plugin inside the worker: /_admin/<name>/... The edge never
 * forwards a public request there (no plugin may be named `admin`); only the
 * control API, after it has checked the caller, relays to this prefix.
 */
export function adminPluginPrefix(name: string): string {
  return `/_admin/${name}`;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One enabled plugin as a worker gets it: its name and its config (JSON, validated by the plugin's own schema). */
export interface LaunchPlugin {
  readonly name: string;
  readonly config: JsonValue;
}

/** The entry module of a plugin; throws for a name that is not one (so it can never become a path). */
export function pluginEntry(name: string, root = PLUGINS_ROOT): string {
  if (!isValidPluginName(name)) throw new Error(`"${name}" is not a valid plugin name`);
  return path.join(root, name, 'index.js');
}
