// tenantry backup <file> [--data-dir D]: an online, consistent copy of the
// data folder into one tar.gz (server/backup/create-backup.ts), taken while
// the platform serves. Works on the folder directly, not through the API.
import { CliError } from '../api-client.js';
import { parseDataDirCommand } from '../args.js';
import { BackupError, createBackup } from '../../backup/create-backup.js';

const USAGE = 'tenantry backup <file> [--data-dir D]';

export async function backupCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { dataDir, positionals } = parseDataDirCommand(args, USAGE);
  if (positionals.length !== 1) throw new CliError(`give one archive file to write; usage: ${USAGE}`, 2);
  const started = performance.now();
  let result;
  try {
    result = await createBackup({ dataDir, file: positionals[0]! });
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(err.message);
    throw err;
  }
  const releases = result.summary.tenants.reduce((n, t) => n + t.releases.length, 0);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  print(`backup written: ${result.file} (${(result.bytes / 2 ** 20).toFixed(1)} MiB; ${result.summary.tenants.length} tenants, ${releases} releases) in ${seconds} s`);
  for (const note of result.summary.notes) print(`  note: ${note}`);
}
