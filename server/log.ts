// A small structured logger: one line per event, `time level message key=value`.
// Good enough to read on a terminal and to grep; no dependency.
// TENANTRY_LOG_FORMAT=json: one JSON object per line instead,
// `{"time", "level", "msg", "fields": {...}}`, for log collectors.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A field's value as JSON can carry it: errors by their message, bigints as strings. */
function jsonValue(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === 'bigint') return String(v);
  return v;
}

function jsonLine(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = jsonValue(v);
  try {
    return JSON.stringify({ time: new Date().toISOString(), level, msg, fields: out });
  } catch {
    // A circular value: keep the line, drop the fields.
    return JSON.stringify({ time: new Date().toISOString(), level, msg, fields: { unserializable: Object.keys(out) } });
  }
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /^[\w.:/@-]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

export function createLogger(
  bindings: Record<string, unknown> = {},
  minLevel: LogLevel = (process.env.TENANTRY_LOG_LEVEL as LogLevel) || 'info',
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  format: LogFormat = process.env.TENANTRY_LOG_FORMAT === 'json' ? 'json' : 'text',
): Logger {
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < (ORDER[minLevel] ?? 20)) return;
    const all = { ...bindings, ...fields };
    if (format === 'json') return write(jsonLine(level, msg, all));
    const tail = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${tail ? ' ' + tail : ''}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (more) => createLogger({ ...bindings, ...more }, minLevel, write, format),
  };
}

/** A logger that drops everything, for tests. */
export const silentLogger: Logger = createLogger({}, 'error', () => {});
