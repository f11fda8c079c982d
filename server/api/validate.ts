// Request bodies are checked against a zod schema; the first problem becomes a 400.
import type { z } from 'zod';
import { AppError } from '../errors.js';

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const where = issue.path.length ? issue.path.join('.') : 'body';
  throw new AppError('invalid_request', `${where}: ${issue.message}`);
}
