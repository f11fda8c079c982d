// The contract of the per-tenant capability channel: a unix socket the edge
// listens on, in a folder the platform owns (<data>/mail/<id>/mail.sock:
// platform:tn-<id> 0750, so only that tenant's user can reach it and none can
// replace it), bind-mounted into the tenant's sandbox. One JSON line in, one
// JSON line out, per connection. The edge knows the tenant from the socket the
// line came in on, never from the line.
//
// Three requests:
// - start: the runtime, before any plugin or tenant code runs, redeems the
//   one-time ticket of its launch for the plugins' keys and the site URL;
// - send: a plugin's message (mail);
// - work: a plugin has work to finish without requests (pending: true), or
//   has finished it (false); the platform keeps the worker running, and
//   starts one after a restart or a crash, while any is pending.

/** Where the runtime finds the socket (set by the platform, deleted by the runtime at once). */
export const CAPABILITY_SOCKET_ENV = 'TENANTRY_CAPABILITY_SOCKET';
/** A one-time ticket for the start request (spent before tenant code runs; worthless after). */
export const CAPABILITY_TICKET_ENV = 'TENANTRY_CAPABILITY_TICKET';

export const CAPABILITY_SOCKET_NAME = 'mail.sock';
/** One request line: a message's text and html with room for JSON escaping. */
export const MAX_CAPABILITY_LINE_BYTES = 3 * 1024 * 1024;

export interface StartRequest {
  readonly op: 'start';
  readonly ticket: string;
}
export interface SendRequest {
  readonly op: 'send';
  readonly mail: unknown;
}
export interface WorkRequest {
  readonly op: 'work';
  readonly plugin: string;
  readonly pending: boolean;
}
export type CapabilityRequest = StartRequest | SendRequest | WorkRequest;

/** Answer to start: per plugin, a 32-byte key (base64) derived for this tenant and plugin. */
export interface StartAnswer {
  readonly ok: true;
  readonly siteUrl: string;
  readonly pluginKeys: Readonly<Record<string, string>>;
}
export interface WorkAnswer {
  readonly ok: true;
}
export interface ErrorAnswer {
  readonly ok: false;
  readonly error: string;
}
