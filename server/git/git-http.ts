// Smart HTTP at /git/<tenant>.git on the platform host: authenticate, then hand
// the request to `git http-backend` as a CGI. Mounted ahead of the API's body
// parsers, because the request body is git's pack stream.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NextFunction, Request, Response } from 'express';
import type { TokenCheck } from '../auth/principal.js';
import type { Logger } from '../log.js';
import { sendError } from '../error-response.js';
import type { Store } from '../db/store.js';
import { accessFor, authorizeGit } from './git-auth.js';
import { baseGitEnv } from './git-command.js';
import { runCgi } from './cgi.js';
import { diskUsage, maxPushBytes } from './repository-size.js';
import { effectiveLimits } from '../model/limits.js';
import type { GitService } from './git-service.js';
import type { TrustedProxies } from '../model/client-origin.js';
import { PushAudit } from './push-audit.js';
import { pushCommandsFrom } from './push-commands.js';

/** `0000`: the body of the probe request git sends before a large push body. */
const FLUSH_PKT_BYTES = 4;
const RELAY_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pre-receive-relay.js');

/** `/<id>.git/<tail>` (the `.git` may be left out) -> tenant id and tail. */
export function parseGitPath(url: string): { tenantId: string; tail: string; query: string } | undefined {
  const q = url.indexOf('?');
  const pathname = q >= 0 ? url.slice(0, q) : url;
  const query = q >= 0 ? url.slice(q + 1) : '';
  const m = /^\/([a-z][a-z0-9-]{0,38}[a-z0-9])(?:\.git)?(\/[A-Za-z0-9._/-]*)?$/.exec(pathname);
  if (!m || (m[2] ?? '').includes('..')) return undefined;
  return { tenantId: m[1]!, tail: m[2] ?? '/', query };
}

export interface GitHttpDeps {
  git: GitService;
  store: Store;
  checkToken: TokenCheck;
  /** The wrong-token throttle counts the client's address, as a trusted proxy gives it. */
  trustedProxies: TrustedProxies;
  log: Logger;
}

export function gitHttpHandler(deps: GitHttpDeps) {
  const { git, store, log } = deps;
  const audit = new PushAudit(store);
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const parsed = parseGitPath(req.url);
      if (!parsed) return sendError(res, 'not_found', 'Not a git repository URL: use /git/<tenant>.git');
      if (req.method !== 'GET' && req.method !== 'POST') return sendError(res, 'method_not_allowed', undefined, { Allow: 'GET, POST' });
      const access = accessFor(parsed.tail, parsed.query);
      const client = deps.trustedProxies.originOf(req).address;
      const decision = authorizeGit(req.headers, parsed.tenantId, access, deps.checkToken, client);
      if (!decision.ok) {
        if (access === 'push') audit.refusedAtDoor(decision, parsed.tenantId, client);
        // 401 with a Basic challenge makes git ask for credentials (or use its helper).
        const headers: Record<string, string> =
          decision.status === 401 ? { 'WWW-Authenticate': 'Basic realm="Tenantry"' } : decision.retryAfterSeconds ? { 'Retry-After': String(decision.retryAfterSeconds) } : {};
        const code = decision.status === 401 ? 'unauthorized' : decision.status === 429 ? 'rate_limited' : 'forbidden';
        return sendError(res, code, decision.message, headers);
      }
      const tenant = store.tenants.get(parsed.tenantId);
      if (!tenant) {
        if (access === 'push') audit.noSuchTenant(decision.actor, parsed.tenantId);
        return sendError(res, 'tenant_not_found', `No tenant with the id "${parsed.tenantId}".`);
      }
      await git.repositories.ensure(tenant.id, tenant.deployBranch);

      const env = baseGitEnv({
        GATEWAY_INTERFACE: 'CGI/1.1',
        SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
        GIT_PROJECT_ROOT: path.dirname(git.repositories.pathOf(tenant.id)),
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: `/${tenant.id}.git${parsed.tail}`,
        REQUEST_METHOD: req.method,
        QUERY_STRING: parsed.query,
        REMOTE_USER: decision.userName,
        REMOTE_ADDR: client,
      });
      const h = req.headers;
      if (h['content-type']) env.CONTENT_TYPE = h['content-type'];
      if (h['content-length'] && !h['transfer-encoding']) env.CONTENT_LENGTH = h['content-length'];
      // http-backend inflates gzip request bodies itself (git clients gzip large fetch negotiations).
      if (h['content-encoding']) env.HTTP_CONTENT_ENCODING = String(h['content-encoding']);
      if (h['git-protocol']) env.HTTP_GIT_PROTOCOL = String(h['git-protocol']);

      if (access !== 'push' || parsed.tail !== '/git-receive-pack') {
        runCgi(req, res, { command: 'git', args: ['http-backend'], env, log });
        return;
      }
      // One push at a time per tenant, from the first byte of the pack to the
      // ref update: the deploy happens before the branch moves, so a second
      // push must not slip in between (see PushReceiver.receive).
      await git.pushes.oneAtATime(tenant.id, async () => {
        // One pack may not exceed an archive upload nor the room left under the tenant's disk limit;
        // git itself stops reading past it ("pack exceeds maximum allowed size"). 0 would mean no limit.
        // Only index-pack enforces the cap, so every push is kept as a pack (unpackLimit 1), never as loose objects.
        const repoBytes = await diskUsage(git.repositories.pathOf(tenant.id));
        const maxPack = Math.max(1, maxPushBytes(effectiveLimits(tenant.limitOverrides), repoBytes));
        Object.assign(env, {
          GIT_CONFIG_COUNT: '2',
          GIT_CONFIG_KEY_0: 'receive.maxInputSize',
          GIT_CONFIG_VALUE_0: String(maxPack),
          GIT_CONFIG_KEY_1: 'receive.unpackLimit',
          GIT_CONFIG_VALUE_1: '1',
        });
        const ticket = git.pushes.issueTicket({
          tenantId: tenant.id,
          actor: decision.actor,
        });
        env.TENANTRY_PUSH_TICKET = ticket;
        env.TENANTRY_HOOK_ADDRESS = await git.pushes.address();
        env.TENANTRY_NODE = process.execPath;
        env.TENANTRY_PRE_RECEIVE = RELAY_SCRIPT;
        await new Promise<void>((resolve) => {
          runCgi(req, res, {
            command: 'git',
            args: ['http-backend'],
            env,
            log,
            onExit: (exit) => {
              const { asked } = git.pushes.revokeTicket(ticket);
              // The hook records what it decides; a pack git refused never reaches it.
              // (A lone flush-pkt is git's probe before a large push, not a push.)
              if (!asked && exit.bytesIn > FLUSH_PKT_BYTES) {
                const commands = h['content-encoding'] ? [] : pushCommandsFrom(exit.bodyHead);
                audit.packRefused({ actor: decision.actor, tenantId: tenant.id, commands, bytesIn: exit.bytesIn, maxBytes: maxPack, exitCode: exit.code });
              }
              resolve();
            },
          });
        });
      });
    } catch (err) {
      next(err);
    }
  };
}
