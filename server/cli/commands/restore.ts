// tenantry restore <file> [--data-dir D]: a backup into an empty or new data
// folder (server/backup/restore-backup.ts); the platform is then started on it.
import { CliError } from '../api-client.js';
import { parseDataDirCommand } from '../args.js';
import { RestoreError, restoreBackup } from '../../backup/restore-backup.js';

const USAGE = 'tenantry restore <file> [--data-dir D]';

export async function restoreCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { dataDir, positionals } = parseDataDirCommand(args, USAGE);
  if (positionals.length !== 1) throw new CliError(`give one backup file; usage: ${USAGE}`, 2);
  let result;
  try {
    result = await restoreBackup({ file: positionals[0]!, dataDir });
  } catch (err) {
    if (err instanceof RestoreError) throw new CliError(err.message);
    throw err;
  }
  const ids = result.tenants.length ? ` (${result.tenants.join(', ')})` : '';
  print(`restored ${result.tenants.length} tenants${ids} from the backup of ${result.summary.createdAt} into ${result.dataDir}`);
  print(`next: tenantry serve --data-dir ${result.dataDir}   (as root: tenant users, owners and modes are set up at start)`);
}
