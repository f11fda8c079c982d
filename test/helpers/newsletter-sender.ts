// A newsletter sender in its own process, for the crash test: it opens the
// tenant's data folder as a worker would (createNewsletter with the sender
// loop), sends whatever is left to send through the test SMTP server, and
// exits 0 when no issue is sending any more. The test kills it with SIGKILL
// mid-send and starts another.
//   node newsletter-sender.js '{"dataDir": "...", "tenantId": "...", "smtpPort": 2525}'
import { createNewsletter } from '../../plugins/newsletter/newsletter.js';
import { smtpMail, testContext } from './newsletter-kit.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; tenantId: string; smtpPort: number; leaseTtlMs?: number };
const ctx = testContext({ tenantId: args.tenantId, dataDir: args.dataDir, mail: smtpMail(args.smtpPort) });
ctx.log.warn = (line) => process.stderr.write(`warn ${line}\n`);
const n = createNewsletter(ctx, { sender: { leaseTtlMs: args.leaseTtlMs ?? 1000, idlePollMs: 50, baseBackoffMs: 50, maxAttempts: 3 } });
process.stdout.write(`started ${process.pid}\n`);
await n.sender!.idle();
await n.stop();
process.stdout.write('done\n');
process.exit(0);
