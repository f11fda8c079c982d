// Argument parsing shared by the CLI commands (node:util parseArgs with the
// client flags every command accepts).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './api-client.js';

export const CLIENT_FLAGS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...CLIENT_FLAGS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message.split('\n')[0]!, 2);
  }
}

export function requireFlag(value: string | undefined, name: string, usage: string): string {
  if (!value) throw new CliError(`missing --${name}; usage: ${usage}`, 2);
  return value;
}
