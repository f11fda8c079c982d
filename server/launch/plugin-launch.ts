// The plugins half of the launch contract: which built-in plugins a worker
// loads, with which config, and where their code is. A plugin is named, never
// located: its code is always <platform>/dist/plugins/<name>/index.js, so no
// path in a launch request can make a worker (or root) load something else.
//
// The list reaches the runtime in one environment variable set by the
// launcher (not on the command line: /proc/<pid>/cmdline is readable by other
// users of the host, a process's environment is not).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
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

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');

export const launchPluginSchema = z.strictObject({
  name: z.string().refine(isValidPluginName, 'not a valid plugin name'),
  config: z.json().refine((c) => bytes(c) <= MAX_PLUGIN_CONFIG_BYTES, `config is larger than ${MAX_PLUGIN_CONFIG_BYTES} bytes as JSON`),
});

export const launchPluginsSchema = z
  .array(launchPluginSchema)
  .max(MAX_PLUGINS)
  .refine((list) => new Set(list.map((p) => p.name)).size === list.length, 'a plugin is listed twice')
  .refine((list) => bytes(list) <= MAX_PLUGINS_JSON_BYTES, `the plugins' configs are larger than ${MAX_PLUGINS_JSON_BYTES} bytes together`);

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One enabled plugin as a worker gets it: its name and its config (JSON, validated by the plugin's own schema). */
export interface LaunchPlugin {
  readonly name: string;
  readonly config: JsonValue;
}

/** Checks a list against the contract; throws an Error saying what is wrong. */
export function parseLaunchPlugins(value: unknown): LaunchPlugin[] {
  const parsed = launchPluginsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new Error(`the plugin list is not valid: ${where}${issue?.message ?? 'unknown problem'}`);
  }
  return parsed.data;
}

/** The entry module of a plugin; throws for a name that is not one (so it can never become a path). */
export function pluginEntry(name: string, root = PLUGINS_ROOT): string {
  if (!isValidPluginName(name)) throw new Error(`"${name}" is not a valid plugin name`);
  return path.join(root, name, 'index.js');
}

/** Why a named plugin cannot be loaded from the platform's own code; undefined when it can. */
export function pluginEntryProblem(name: string, root = PLUGINS_ROOT): string | undefined {
  if (!isValidPluginName(name)) return 'not a valid plugin name';
  let real: string;
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
    real = fs.realpathSync(pluginEntry(name, root));
  } catch {
    return 'not installed (no compiled entry under dist/plugins/)';
  }
  // A link out of dist/plugins/ would make the worker load code the platform did not build.
  if (real !== path.join(realRoot, name, 'index.js')) return 'its entry leads outside dist/plugins/';
  return undefined;
}

/** The runtime's environment: the spec's, with the plugin list set by the platform (never taken from spec.env). */
export function runtimeEnv(env: Readonly<Record<string, string>>, plugins: readonly LaunchPlugin[] | undefined): Record<string, string> {
  const out: Record<string, string> = { ...env };
  delete out[PLUGINS_ENV];
  if (plugins?.length) out[PLUGINS_ENV] = JSON.stringify(plugins);
  return out;
}
