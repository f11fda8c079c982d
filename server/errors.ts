// The one catalogue of API errors: a stable snake_case code, an HTTP status and
// a default message. Handlers throw these (or the edge sends them with
// error-response.ts); every answer is `{"error": {"code", "message"}}`. Callers branch on `code`, never on text.

export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is not valid.' },
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_query: { status: 400, message: 'A query parameter is not valid.' },
  invalid_tenant_id: {
    status: 400,
    message: 'A tenant id is 2 to 40 characters: lowercase letters, digits and dashes, starting with a letter and not ending with a dash.',
  },
  invalid_domain: { status: 400, message: 'This is not a valid domain name.' },
  domain_reserved: { status: 400, message: "This name belongs to the platform: its own host name, or a name under the base domain." },
  certificate_invalid: { status: 400, message: 'The certificate was refused.' },
  plugin_config_invalid: { status: 400, message: "The plugin's config was refused by its schema." },
  unauthorized: { status: 401, message: 'A valid token is required: send "Authorization: Bearer <token>".' },
  forbidden: { status: 403, message: 'This token may not do that.' },
  not_found: { status: 404, message: 'Not found.' },
  tenant_not_found: { status: 404, message: 'No such tenant.' },
  deploy_not_found: { status: 404, message: 'No such deploy.' },
  domain_not_found: { status: 404, message: 'This tenant has no such domain.' },
  plugin_not_found: { status: 404, message: 'No such plugin is installed.' },
  plugin_not_enabled: { status: 404, message: 'This plugin is not enabled for this tenant.' },
  unknown_host: { status: 404, message: 'No site is configured for this host name.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  tenant_exists: { status: 409, message: 'A tenant with this id already exists.' },
  domain_taken: { status: 409, message: 'This domain belongs to another tenant.' },
  domain_not_verified: { status: 409, message: 'This domain is not verified yet: prove it first (POST .../verify).' },
  verification_failed: { status: 409, message: 'The proof of ownership was not found.' },
  deploy_files_missing: { status: 409, message: 'Some files of this deploy have not been uploaded yet: send those listed in "required" first.' },
  deploy_in_progress: { status: 409, message: 'Another deploy of this tenant is in progress; try again when it has finished.' },
  conflict: { status: 409, message: 'The request conflicts with the current state.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Unsupported content type.' },
  archive_invalid: { status: 422, message: 'The archive was refused.' },
  hash_mismatch: { status: 422, message: 'The uploaded bytes do not have the SHA-256 named in the URL.' },
  deploy_failed: { status: 422, message: 'The release could not be made live.' },
  plugin_start_failed: { status: 422, message: 'The plugin failed to start with this config; the previous settings are kept.' },
  rate_limited: { status: 429, message: 'Too many requests; slow down.' },
  internal_error: { status: 500, message: 'Something went wrong on our side.' },
  worker_failed: { status: 502, message: "The site's dynamic route failed before it answered." },
  worker_unavailable: { status: 503, message: 'The site is temporarily unavailable.' },
  no_live_release: { status: 503, message: 'This site has no live release.' },
  worker_timeout: { status: 504, message: "The site's dynamic route did not answer in time." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** Extra fields for the JSON body (never secrets or paths). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message ?? ERRORS[code].message);
    this.status = ERRORS[code].status;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
