// Argument parsing shared by the CLI commands (node:util parseArgs with the
// client flags every command accepts).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './api-client.js';
import { ConfigError, loadConfig } from '../config.js';

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

/** For commands that work on the data folder itself (no API): `--data-dir`, else TENANTRY_DATA_DIR, else the default. */
export function parseDataDirCommand(args: string[], usage: string): { dataDir: string; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { 'data-dir': { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message.split('\n')[0]!}; usage: ${usage}`, 2);
  }
  const flag = parsed.values['data-dir'];
  try {
    return { dataDir: loadConfig(flag ? ['--data-dir', flag] : [], process.env).dataDir, positionals: parsed.positionals };
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}
