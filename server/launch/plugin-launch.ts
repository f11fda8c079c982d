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
import { isValidPluginName, MAX_PLUGIN_CONFIG_BYTES, MAX_PLUGINS, MAX_PLUGINS_JSON_BYTES, pluginEntry, PLUGINS_ENV, type LaunchPlugin } from './plugin-names.js';

export { isValidPluginName, pluginEntry, PLUGINS_ENV, PLUGIN_NAME_PATTERN, RESERVED_PLUGIN_NAMES, MAX_PLUGINS, MAX_PLUGIN_CONFIG_BYTES, MAX_PLUGINS_JSON_BYTES, publicPluginPrefix, adminPluginPrefix } from './plugin-names.js';
export type { JsonValue, LaunchPlugin } from './plugin-names.js';

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
