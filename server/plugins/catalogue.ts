// The plugins this platform has: each dist/plugins/<name>/index.js, imported
// once in the edge to read its manifest (plugin code is platform code, built
// with it; only onWorkerStart runs in tenants' workers). Names starting with
// "_" are test fixtures: hidden unless the platform is told to offer them.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { Plugin, PluginManifest } from '../../plugins/plugin-api.js';
import { PLUGINS_ROOT } from '../launch/entries.js';
import { isValidPluginName, pluginEntryProblem } from '../launch/plugin-launch.js';

/** What GET /api/v1/plugins shows of a plugin. */
export interface PluginInfo {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** The config's JSON schema (zod's toJSONSchema of the manifest's schema). */
  readonly configSchema: unknown;
}

export interface CatalogueOptions {
  readonly root?: string;
  /** Offer "_" plugins too (tests only). */
  readonly includeHidden?: boolean;
}

export class PluginCatalogue {
  private readonly root: string;
  private readonly loaded = new Map<string, Promise<PluginManifest | undefined>>();

  constructor(private readonly o: CatalogueOptions = {}) {
    this.root = o.root ?? PLUGINS_ROOT;
  }

  /** Whether a name may be offered at all (installed questions are for manifest()). */
  offers(name: string): boolean {
    return isValidPluginName(name) && (this.o.includeHidden === true || !name.startsWith('_'));
  }

  /** The manifest of an installed, offered plugin; undefined otherwise (a broken module is logged by the caller as absent). */
  manifest(name: string): Promise<PluginManifest | undefined> {
    if (!this.offers(name) || pluginEntryProblem(name, this.root)) return Promise.resolve(undefined);
    let p = this.loaded.get(name);
    if (!p) {
      p = import(pathToFileURL(path.join(this.root, name, 'index.js')).href).then(
        (mod: { default?: Partial<Plugin> }) => {
          const m = mod.default?.manifest;
          return m && m.name === name && typeof m.configSchema?.safeParse === 'function' ? m : undefined;
        },
        () => undefined,
      );
      this.loaded.set(name, p);
    }
    return p;
  }

  async list(): Promise<PluginInfo[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.root).filter((n) => this.offers(n)).sort();
    } catch {
      return [];
    }
    const out: PluginInfo[] = [];
    for (const name of names) {
      const m = await this.manifest(name);
      if (m) out.push(infoOf(m));
    }
    return out;
  }
}

export function infoOf(m: PluginManifest): PluginInfo {
  let configSchema: unknown;
  try {
    configSchema = z.toJSONSchema(m.configSchema, { unrepresentable: 'any' });
  } catch {
    configSchema = {};
  }
  return { name: m.name, version: m.version, description: m.description, configSchema };
}

/** "title: Too small: expected string to have >=1 characters; ..." (at most 5 issues). */
export function configProblem(m: PluginManifest, config: unknown): { ok: true; value: unknown } | { ok: false; problem: string; field?: string } {
  const parsed = m.configSchema.safeParse(config);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues.slice(0, 5);
  const problem = issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  const first = issues[0];
  return { ok: false, problem, field: first?.path.length ? first.path.join('.') : undefined };
}
