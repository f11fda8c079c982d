// Settings: read once from flags and environment variables, validated into one
// frozen, typed object. A bad value stops the start with one line naming it.
import { LOG_FORMATS, type LogFormat } from './log.js';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseTrustedProxies, TrustedProxies } from './model/client-origin.js';

export const ISOLATION_MODES = ['auto', 'strict', 'off'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** How workers get their namespaces: bubblewrap where it works (else unshare), or always unshare. */
export const SANDBOX_MODES = ['auto', 'unshare'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

const hostName = z
  .string()
  .min(1)
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i, 'must be a host name such as localhost or example.com')
  .transform((s) => s.toLowerCase());

const port = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');

/** One entry per setting: the variable, the flag, the schema. Defaults live here only. */
const settingsSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data'),
  port: port.default(8080),
  bind: z.string().min(1).default('127.0.0.1'),
  httpsPort: port.optional(),
  platformHost: hostName.default('localhost'),
  baseDomain: hostName.default('localhost'),
  adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
  smtpUrl: z.url({ protocol: /^smtps?$/, error: 'must be a URL such as smtp://user:pass@host:587' }).optional(),
  mailFrom: z.email('must be an e-mail address').optional(),
  /** Messages a tenant's plugins may send per rolling hour. */
  mailHourlyCap: z.coerce.number().int().min(0).default(500),
  isolation: z.enum(ISOLATION_MODES, { error: 'must be one of auto, strict, off' }).default('auto'),
  /** `unshare`: the fallback sandbox (no file view, no seccomp) even where bubblewrap works; for tests. */
  sandbox: z.enum(SANDBOX_MODES, { error: 'must be one of auto, unshare' }).default('auto'),
  secret: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Idle time after which a tenant's worker is stopped. */
  workerIdleSeconds: z.coerce.number().int().min(1).default(300),
  /** Per-request timeout for dynamic routes (504 after it). */
  requestTimeoutSeconds: z.coerce.number().int().min(1).default(30),
  acmeDirectoryUrl: z.url({ protocol: /^https?$/, error: 'must be the URL of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory' }).optional(),
  acmeEmail: z.email('must be an e-mail address').optional(),
  acmeCaFile: z.string().min(1).refine((f) => fs.existsSync(f), 'no such file (give a PEM file of CA certificates)').optional(),
  /** `host:port,...` for TXT look-ups (domain proof); parsed into Resolver.setServers entries. */
  dnsServers: z
    .string()
    .transform((s) => s.split(',').map((e) => e.trim()).filter(Boolean))
    .pipe(z.array(z.string().refine(isDnsServer, 'each entry must be an IP address with an optional port, e.g. 127.0.0.1:53 or [::1]:53')).min(1))
    .optional(),
  /** Addresses or CIDRs whose X-Forwarded-For / -Proto are believed. */
  trustedProxies: z
    .string()
    .transform((s, ctx) => {
      try {
        return parseTrustedProxies(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${(err as Error).message}; give addresses or CIDRs separated by commas` });
        return z.NEVER;
      }
    })
    .optional(),
  /** Open connections one client address may hold; more are closed at once. */
  maxConnectionsPerAddress: z.coerce.number({ error: 'must be a number' }).int().min(1).max(1_000_000).default(256),
  /** Open connections in all; default: what the descriptor limit leaves after a reserve for workers and files. */
  maxConnections: z.coerce.number({ error: 'must be a number' }).int().min(16).max(10_000_000).optional(),
  /** Edge processes sharing the listening sockets (supervised mode); default: the cores, at most MAX_DEFAULT_EDGES. */
  edges: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64').optional(),
  warmWorkers: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be 0 or more').max(64, 'must be at most 64').optional(),
  /** Debugging: each answer names the edge that accepted its connection (X-Tenantry-Edge). */
  edgeHeader: z.enum(['on', 'off'], { error: 'must be on or off' }).default('off'),
  /** Days the audit trail is kept. */
  auditDays: z.coerce.number({ error: 'must be a number' }).int().min(1, 'must be at least 1').max(36_500).default(90),
  /** `json`: one JSON object per log line; `text`: human lines. Read by log.ts from the environment; validated here. */
  logFormat: z.enum(LOG_FORMATS, { error: 'must be one of text, json' }).default('text'),
});

/** `1.2.3.4`, `1.2.3.4:53`, `::1` or `[::1]:53`: what Resolver.setServers takes. */
function isDnsServer(entry: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
  if (bracketed) return net.isIPv6(bracketed[1]!) && (bracketed[2] === undefined || Number(bracketed[2]) <= 65535);
  if (net.isIP(entry) !== 0) return true;
  const m = /^([\d.]+):(\d{1,5})$/.exec(entry);
  return !!m && net.isIPv4(m[1]!) && Number(m[2]) <= 65535;
}

type SettingKey = keyof z.input<typeof settingsSchema>;

/** Setting -> environment variable. The flag is the variable's tail in kebab case. */
export const SETTING_VARIABLES: Readonly<Record<SettingKey, string>> = {
  dataDir: 'TENANTRY_DATA_DIR',
  port: 'TENANTRY_PORT',
  bind: 'TENANTRY_BIND',
  httpsPort: 'TENANTRY_HTTPS_PORT',
  platformHost: 'TENANTRY_PLATFORM_HOST',
  baseDomain: 'TENANTRY_BASE_DOMAIN',
  adminToken: 'TENANTRY_ADMIN_TOKEN',
  smtpUrl: 'TENANTRY_SMTP_URL',
  mailFrom: 'TENANTRY_MAIL_FROM',
  mailHourlyCap: 'TENANTRY_MAIL_HOURLY_CAP',
  isolation: 'TENANTRY_ISOLATION',
  sandbox: 'TENANTRY_SANDBOX',
  secret: 'TENANTRY_SECRET',
  workerIdleSeconds: 'TENANTRY_WORKER_IDLE_SECONDS',
  requestTimeoutSeconds: 'TENANTRY_REQUEST_TIMEOUT_SECONDS',
  acmeDirectoryUrl: 'TENANTRY_ACME_DIRECTORY_URL',
  acmeEmail: 'TENANTRY_ACME_EMAIL',
  acmeCaFile: 'TENANTRY_ACME_CA_FILE',
  dnsServers: 'TENANTRY_DNS_SERVERS',
  trustedProxies: 'TENANTRY_TRUSTED_PROXIES',
  maxConnectionsPerAddress: 'TENANTRY_MAX_CONNECTIONS_PER_ADDRESS',
  maxConnections: 'TENANTRY_MAX_CONNECTIONS',
  auditDays: 'TENANTRY_AUDIT_DAYS',
  edges: 'TENANTRY_EDGES',
  warmWorkers: 'TENANTRY_WARM_WORKERS',
  edgeHeader: 'TENANTRY_EDGE_HEADER',
  logFormat: 'TENANTRY_LOG_FORMAT',
};

export function flagFor(key: SettingKey): string {
  return '--' + SETTING_VARIABLES[key].replace(/^TENANTRY_/, '').toLowerCase().replace(/_/g, '-');
}

export interface Config {
  readonly dataDir: string;
  readonly port: number;
  readonly bind: string;
  readonly httpsPort: number | undefined;
  readonly platformHost: string;
  readonly baseDomain: string;
  readonly adminToken: string | undefined;
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  readonly mailHourlyCap: number;
  readonly isolation: IsolationMode;
  readonly sandbox: SandboxMode;
  readonly secret: string | undefined;
  readonly workerIdleSeconds: number;
  readonly requestTimeoutSeconds: number;
  /** Automatic certificates over ACME HTTP-01 when set. */
  readonly acmeDirectoryUrl: string | undefined;
  readonly acmeEmail: string | undefined;
  /** Extra CA bundle (PEM) trusted for the ACME server's own TLS. */
  readonly acmeCaFile: string | undefined;
  /** DNS servers for domain proof look-ups; undefined: the system's. */
  readonly dnsServers: readonly string[] | undefined;
  /** Peers whose forwarding headers are believed (none by default). */
  readonly trustedProxies: TrustedProxies;
  readonly maxConnectionsPerAddress: number;
  /** Undefined: derived from the descriptor limit at start (edge/connection-guard.ts). */
  readonly maxConnections: number | undefined;
  /** Edge processes when supervised (1: a single edge, as in-process mode always is). */
  readonly edges: number;
  /** Sandboxed workers kept started ahead of need, given a tenant on its first request (sandbox/warm-workers.ts). */
  readonly warmWorkers: number;
  readonly edgeHeader: boolean;
  /** Days the audit trail is kept (pruned at start and daily). */
  readonly auditDays: number;
  readonly logFormat: LogFormat;
}

/** The default edge count is capped: past this, one SQLite file and one worker pool are the limit, not the cores. */
export const MAX_DEFAULT_EDGES = 8;

/** One warm worker per core, at most 4 (each holds Node and the runtime in memory, about 40 MB). */
function defaultWarmWorkers(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 4));
}

function defaultEdges(): number {
  return Math.max(1, Math.min(os.availableParallelism(), MAX_DEFAULT_EDGES));
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Reads flags (`--port 9000` or `--port=9000`) over environment variables.
 * Unknown flags are an error: a typo must not silently fall back to a default.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const raw: Record<string, string> = {};
  const byFlag = new Map<string, SettingKey>();
  for (const key of Object.keys(SETTING_VARIABLES) as SettingKey[]) {
    byFlag.set(flagFor(key), key);
    const fromEnv = env[SETTING_VARIABLES[key]];
    if (fromEnv !== undefined && fromEnv !== '') raw[key] = fromEnv;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown option ${flag}; known: ${[...byFlag.keys()].join(', ')}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    raw[key] = value;
  }
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]) as SettingKey;
    const name = SETTING_VARIABLES[key] ?? key;
    throw new ConfigError(`invalid setting ${name} (${flagFor(key)}) = ${JSON.stringify(raw[key] ?? '')}: ${issue.message}`);
  }
  const s = parsed.data;
  return Object.freeze({
    dataDir: path.resolve(s.dataDir),
    port: s.port,
    bind: s.bind,
    httpsPort: s.httpsPort,
    platformHost: s.platformHost,
    baseDomain: s.baseDomain,
    adminToken: s.adminToken,
    smtpUrl: s.smtpUrl,
    mailFrom: s.mailFrom ?? `no-reply@${s.platformHost}`,
    mailHourlyCap: s.mailHourlyCap,
    isolation: s.isolation,
    sandbox: s.sandbox,
    secret: s.secret,
    workerIdleSeconds: s.workerIdleSeconds,
    requestTimeoutSeconds: s.requestTimeoutSeconds,
    acmeDirectoryUrl: s.acmeDirectoryUrl,
    acmeEmail: s.acmeEmail,
    acmeCaFile: s.acmeCaFile === undefined ? undefined : path.resolve(s.acmeCaFile),
    dnsServers: s.dnsServers,
    trustedProxies: s.trustedProxies ?? TrustedProxies.none(),
    maxConnectionsPerAddress: s.maxConnectionsPerAddress,
    maxConnections: s.maxConnections,
    edges: s.edges ?? defaultEdges(),
    warmWorkers: s.warmWorkers ?? defaultWarmWorkers(),
    edgeHeader: s.edgeHeader === 'on',
    auditDays: s.auditDays,
    logFormat: s.logFormat,
  });
}
