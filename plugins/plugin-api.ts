// What a built-in plugin is, and what it is given. A plugin lives in
// plugins/<name>/index.ts and default-exports definePlugin({...}). The worker
// runtime of each tenant that enables it imports the compiled module
// (dist/plugins/<name>/index.js), checks the tenant's config against the
// manifest's schema, and calls onWorkerStart with a context for that tenant.
//
// A plugin runs inside the tenant's sandboxed worker with the tenant's rights
// only. It may import its own code, this file, zod and express, and of the
// platform only server/model/ and server/launch/ (the architecture check
// enforces it): no database, no secrets, no other tenant.
import type { Router } from 'express';
import type { z } from 'zod';

export interface PluginManifest<Schema extends z.ZodType = z.ZodType> {
  /** The plugin's folder name under plugins/ (PLUGIN_NAME_PATTERN in server/launch/plugin-launch.ts). */
  readonly name: string;
  readonly version: string;
  /** One sentence, shown to tenants when they choose plugins. */
  readonly description: string;
  /** A tenant's config must pass it; onWorkerStart gets the parsed value. */
  readonly configSchema: Schema;
}

/** Lines go to the tenant's site log (`tenantry logs`), prefixed with the plugin's name. */
export interface PluginLogger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** A message a plugin asks the platform to send for its tenant. */
export interface OutgoingMail {
  /** One recipient address. */
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
  /** Display name for From; the address is always the platform's (TENANTRY_MAIL_FROM's domain). */
  readonly fromName?: string;
  readonly replyTo?: string;
  /**
   * Extra headers (List-Unsubscribe, List-Unsubscribe-Post, List-Id, ...).
   * From, Sender, To, Return-Path, DKIM-Signature and the like are the
   * platform's to set and are refused here.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * What became of a message, as the platform's SMTP client saw it:
 * - sent: the server answered 250 to the message (DATA accepted);
 * - deferred: a 4xx answer, or no connection, before the message was accepted
 *   (nothing was delivered; try again later);
 * - failed: a 5xx answer (the address or the message was refused; do not retry);
 * - refused: the platform itself refused it (a cap, a bad header) before any SMTP.
 */
export type MailResult =
  | { readonly status: 'sent'; readonly messageId: string }
  | { readonly status: 'deferred'; readonly reason: string }
  | { readonly status: 'failed'; readonly reason: string; readonly smtpCode?: number }
  | { readonly status: 'refused'; readonly reason: string };

/** Mail is a capability the platform performs for the tenant: workers have no network. */
export interface MailCapability {
  send(mail: OutgoingMail): Promise<MailResult>;
}

/**
 * Keys for signing links (HMAC), derived by the platform from its master
 * secret per tenant, plugin and purpose (HKDF); the master secret never
 * enters a worker, and the tenant's own routes are not given these keys.
 */
export interface PluginKeys {
  /** 32 bytes, the same for this tenant, plugin and purpose across restarts; different for any other. */
  key(purpose: string): Buffer;
}

/**
 * Work a plugin does without any request coming (sending an issue). Workers
 * start on requests and stop when idle; while a plugin says it has work
 * pending, the platform keeps the tenant's worker running, and starts one
 * when the platform starts again or the worker died. The platform records it
 * (it survives a restart); say false once the work is done.
 */
export interface BackgroundWork {
  /** Resolves true once the platform has recorded it, false when it could not be told (never throws). */
  setPending(pending: boolean): Promise<boolean>;
}

/** What a plugin gets for one tenant, in that tenant's worker. */
export interface PluginContext<Config = unknown> {
  readonly tenantId: string;
  /**
   * The plugin's own writable folder for this tenant (inside the tenant's data
   * folder, <TENANTRY_DATA>/.plugins/<name>/), created before onWorkerStart.
   * It survives deploys and restarts; the tenant's routes are not told of it.
   */
  readonly dataDir: string;
  /** The tenant's config, validated by the manifest's configSchema. */
  readonly config: Config;
  readonly log: PluginLogger;
  /** Sends mail through the platform (checked, capped and logged there). */
  readonly mail: MailCapability;
  readonly keys: PluginKeys;
  readonly background: BackgroundWork;
  /** The tenant's primary site URL, e.g. https://acme.example.com (no trailing slash). */
  readonly siteUrl: string;
}

/**
 * Routers the worker mounts before the tenant's api/ routes:
 * - publicRouter at /_<name>/ on the tenant's domains (anyone can call it);
 * - adminRouter at /_admin/<name>/ in the worker, reached only through the
 *   platform's control API (/api/v1/tenants/:id/plugins/<name>/...) once it
 *   has checked the caller's token. Never reachable from the tenant's domains.
 * Request bodies are already parsed (JSON and forms, up to 1 MB).
 */
export interface PluginRouters {
  readonly publicRouter?: Router;
  readonly adminRouter?: Router;
}

export interface Plugin<Schema extends z.ZodType = z.ZodType> {
  readonly manifest: PluginManifest<Schema>;
  /**
   * Runs once each time a worker of the tenant starts, before the worker
   * answers any request: open state, return the routers. A throw (or a
   * rejected promise) fails the worker's start; the error is shown with the
   * plugin's name in the tenant's log.
   */
  onWorkerStart(context: PluginContext<z.infer<Schema>>): PluginRouters | Promise<PluginRouters>;
  /**
   * Best effort: runs when the worker gets SIGTERM (plain workers stopped for
   * idleness, a redeploy or a settings change), with about a second to close
   * files. Sandboxed workers are stopped by killing their cgroup, and any
   * worker may crash or hit its memory limit: then it never runs. Keep data
   * safe without it.
   */
  onWorkerStop?(): void | Promise<void>;
}

/** Types a plugin's definition (config inferred from its schema); returns it unchanged. */
export function definePlugin<Schema extends z.ZodType>(plugin: Plugin<Schema>): Plugin<Schema> {
  return plugin;
}
