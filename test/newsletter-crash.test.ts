// At most once across a crash: the sender runs in a child process that is
// killed with SIGKILL while the SMTP server holds a message (DATA received,
// not yet answered), then a new sender process picks the send up on its own.
// Nobody receives the issue twice (counted per recipient at the SMTP server),
// the delivery whose outcome was lost is "unknown" (never sent again), and
// sent + failed + unknown + skipped = subscribers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNewsletter, type Newsletter } from '../plugins/newsletter/newsletter.js';
import { serve, smtpMail, startSmtp, tempDataDir, testContext, type TestServer, type TestSmtp } from './helpers/newsletter-kit.js';

const SENDER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'newsletter-sender.js');
const SUBSCRIBERS = 200;
const KILL_AT = 70;

let smtp: TestSmtp;
let server: TestServer;
let n: Newsletter;
const children: ChildProcess[] = [];

before(async () => {
  smtp = await startSmtp({ delayMs: 15 });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server?.close();
  await n?.stop();
  await smtp.close();
});

function startSender(dataDir: string, smtpPort: number): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [SENDER, JSON.stringify({ dataDir, tenantId: 'crash', smtpPort })], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, exited };
}

test('a sender killed with SIGKILL mid-send resumes in a new process; nobody receives the issue twice', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir('newsletter-crash-');
  // This process only administers (no sender loop): the children send.
  n = createNewsletter(testContext({ tenantId: 'crash', dataDir, mail: smtpMail(smtp.port) }), { sender: false });
  server = await serve(n);
  const admin = (p: string, body?: unknown) => fetch(`${server.url}/_admin/newsletter${p}`, body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const emails = Array.from({ length: SUBSCRIBERS }, (_, i) => `reader${i}@crash.test`);
  assert.deepEqual(await (await admin('/subscribers/import', emails.map((email) => ({ email })))).json(), { added: SUBSCRIBERS, skipped: 0 });
  const issue = await (await admin('/issues', { subject: 'Crash-safe', html: '<p>Once only.</p>' })).json() as { id: string };
  assert.equal((await admin(`/issues/${issue.id}/send`, {})).status, 202);

  const first = startSender(dataDir, smtp.port);
  let killedWhileHolding: string | null = null;
  smtp.behaviour = {
    delayMs: 15,
    onReceived: async (mail, count) => {
      if (count !== KILL_AT) return;
      // The message is in, the 250 not yet given: the sender dies between claim and record.
      killedWhileHolding = mail.to;
      first.child.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
    },
  };
  const died = await first.exited;
  assert.equal(died.signal, 'SIGKILL', died.stderr);
  const midway = await (await admin(`/issues/${issue.id}`)).json() as { status: string; counts: Record<string, number> };
  assert.equal(midway.status, 'sending');
  assert.ok(midway.counts.queued! > 0 && midway.counts.sent! >= KILL_AT - 1, JSON.stringify(midway.counts));
  const claimed = n.store.db.prepare(`SELECT count(*) AS c FROM deliveries WHERE status = 'sending'`).get() as { c: number };
  assert.equal(claimed.c, 1, 'one delivery claimed with no recorded outcome');

  smtp.behaviour = { delayMs: 2 };
  const second = startSender(dataDir, smtp.port);
  const done = await second.exited;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /1 deliveries had no recorded outcome after a stop; marked unknown/);

  const final = await (await admin(`/issues/${issue.id}`)).json() as { status: string; counts: Record<string, number> };
  assert.equal(final.status, 'sent');
  const c = final.counts as { queued: number; sent: number; failed: number; unknown: number; skipped: number };
  assert.equal(c.queued, 0);
  assert.equal(c.sent + c.failed + c.unknown + c.skipped, SUBSCRIBERS, JSON.stringify(c));
  assert.equal(c.unknown, 1);
  const perRecipient = new Map<string, number>();
  for (const m of smtp.received) perRecipient.set(m.to, (perRecipient.get(m.to) ?? 0) + 1);
  const twice = [...perRecipient].filter(([, k]) => k > 1);
  assert.deepEqual(twice, [], 'nobody received the issue twice');
  assert.equal(perRecipient.get(killedWhileHolding!), 1, 'the unknown delivery had arrived and was not sent again');
  assert.equal(smtp.received.length, c.sent + c.unknown, 'every sent delivery arrived, and the unknown one');
  for (const e of emails) assert.ok((perRecipient.get(e) ?? 0) <= 1);
  const unknownRow = n.store.db.prepare(`SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.status = 'unknown'`).get() as { email: string };
  assert.equal(unknownRow.email, killedWhileHolding);
});
