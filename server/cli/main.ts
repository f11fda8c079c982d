// The `tenantry` command: `serve` runs the platform; `backup` and `restore`
// work on a data folder directly; every other command is a thin client of the
// HTTP API. Exit 0 on success; one line on stderr otherwise.
import { CliError } from './api-client.js';
import { serveCommand } from './commands/serve.js';
import { tenantsCommand } from './commands/tenants.js';
import { tokensCommand } from './commands/tokens.js';
import { deployCommand } from './commands/deploy.js';
import { deploysCommand } from './commands/deploys.js';
import { rollbackCommand } from './commands/rollback.js';
import { logsCommand } from './commands/logs.js';
import { backupCommand } from './commands/backup.js';
import { restoreCommand } from './commands/restore.js';
import { domainsCommand } from './commands/domains.js';
import { pluginsCommand } from './commands/plugins.js';
import { auditCommand } from './commands/audit.js';

type Command = (args: string[], print: (s: string) => void) => Promise<void>;

export const COMMANDS: Record<string, Command> = {
  serve: (args) => serveCommand(args),
  tenants: tenantsCommand,
  tokens: tokensCommand,
  deploy: deployCommand,
  deploys: deploysCommand,
  rollback: rollbackCommand,
  logs: logsCommand,
  backup: backupCommand,
  restore: restoreCommand,
  domains: domainsCommand,
  plugins: pluginsCommand,
  audit: auditCommand,
};

const HELP = `usage: tenantry <command> [options]

  serve                                   run the platform (what npm start runs); settings are
                                          TENANTRY_* environment variables (README, "Configuration")
  tenants create <id> [--domain D]...     create a tenant (admin)
  tenants list | show <id> | delete <id>
  tokens create --tenant <id> [--scope deploy,read,plugins]
  deploy [DIR|ARCHIVE] --tenant <id> [--message M] [--include-node-modules] [--tar]
                                          DIR (default .): send only the files the store lacks (--tar: pack
                                          and upload it whole); ARCHIVE: upload a tar or tar.gz; print the URL
  deploys --tenant <id>                   deploy history, newest first (* = live)
  rollback --tenant <id> [<deployId>]     make a release live again (default: the one before the live one)
  logs --tenant <id> [--lines N]          the site log: worker output and access lines, newest last
  backup <file> [--data-dir D]            online copy of the data folder into one tar.gz (while serving)
  restore <file> [--data-dir D]           a backup into an empty or new data folder
  domains add <domain> --tenant <id> [--redirect to-apex|to-www]
                                          claim a custom domain (the admin's are verified at once)
  domains verify <domain> --tenant <id>   check its proof (TXT record or HTTP URL)
  domains remove <domain> --tenant <id> | list --tenant <id> | show <domain> --tenant <id>
  domains certificate <domain> --tenant <id> --cert FILE --key FILE
                                          upload a certificate (PEM) for a verified domain
  plugins enable <name> --tenant <id> [--config JSON]
                                          switch a plugin on (or reconfigure it) for a tenant
  plugins disable <name> --tenant <id>    switch it off (its data is kept)
  plugins list [--tenant <id>]            installed plugins, or a tenant's
  audit [--tenant <id>] [--limit N]       who changed what, newest first (admin: all tenants)

backup and restore use the data folder (--data-dir or TENANTRY_DATA_DIR).
Client commands read TENANTRY_URL (default http://localhost:8080) and
TENANTRY_TOKEN, or --url and --token.`;

/** The lines of HELP for one command (its usage lines and their continuations), then the common footer. */
export function commandHelp(name: string): string {
  const lines = HELP.split('\n');
  const footer = lines.slice(lines.indexOf('') + 1).filter((l) => l !== '' && !l.startsWith('  '));
  const own: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^  \S/.test(line)) inside = line.startsWith(`  ${name} `) || line === `  ${name}`;
    else if (!/^ {4,}\S/.test(line)) inside = false;
    if (inside) own.push(line);
  }
  return [`usage: tenantry ${name} ...`, '', ...own, '', ...footer].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`tenantry: unknown command "${name}"; run "tenantry --help"`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(commandHelp(name));
    return 0;
  }
  try {
    await cmd(rest, (s) => console.log(s));
    return 0;
  } catch (err) {
    if (err instanceof CliError) {
      console.error(err.message.startsWith('tenantry:') ? err.message : `tenantry: ${err.message}`);
      return err.exitCode;
    }
    console.error(`tenantry: ${(err as Error).message}`);
    return 1;
  }
}

// Run when executed directly (not when imported by tests).
if (process.argv[1] && import.meta.url === new URL(process.argv[1], 'file://').href) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0 || process.argv[2] !== 'serve') process.exitCode = code;
  });
}
