// The CLI's HTTP client: TENANTRY_URL / --url and TENANTRY_TOKEN / --token.
// Errors from the API become one line: "<message> (<code>, HTTP <status>)".

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface ClientOptions {
  url: string;
  token: string | undefined;
}

export function clientOptions(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv): ClientOptions {
  return {
    url: (flags.url ?? env.TENANTRY_URL ?? 'http://localhost:8080').replace(/\/+$/, ''),
    token: flags.token ?? env.TENANTRY_TOKEN,
  };
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

export async function apiRequest<T = unknown>(opts: ClientOptions, path: string, req: RequestOptions = {}): Promise<T> {
  const answer = await apiCall<T>(opts, path, req);
  if (!answer.ok) throw answerError(answer);
  return answer.data;
}

export interface ApiAnswer<T> {
  readonly ok: boolean;
  readonly status: number;
  readonly data: T;
  /** The error body's code, when the answer is an error of the API's shape. */
  readonly code: string | undefined;
  readonly text: string;
}

/** The one-line error for an answer that is not ok. */
export function answerError(answer: ApiAnswer<unknown>): CliError {
  const e = (answer.data as { error?: { code?: string; message?: string } } | undefined)?.error;
  return new CliError(e ? `${String(e.message).replace(/\.$/, "")} (${e.code}, HTTP ${answer.status})` : `HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
}

/** Like apiRequest, but an error answer is returned (with its status and code) instead of thrown. */
export async function apiCall<T = unknown>(opts: ClientOptions, path: string, req: RequestOptions = {}): Promise<ApiAnswer<T>> {
  if (!opts.token) throw new CliError('no token: set TENANTRY_TOKEN or pass --token (the admin token is in <data>/admin-token)', 2);
  const headers: Record<string, string> = { Authorization: `Bearer ${opts.token}`, Accept: 'application/json', ...req.headers };
  let body = req.body;
  if (req.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(req.json);
  }
  let res: Response;
  try {
    res = await fetch(opts.url + path, { method: req.method ?? 'GET', headers, body, duplex: 'half' } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach ${opts.url} (${cause}); is "tenantry serve" running? Set TENANTRY_URL or --url otherwise`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  const code = (data as { error?: { code?: string } } | undefined)?.error?.code;
  return { ok: res.ok, status: res.status, data: data as T, code: typeof code === 'string' ? code : undefined, text };
}
