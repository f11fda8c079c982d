// The worker's end of its tenant's capability channel (launch/capability-channel.ts):
// one JSON line out, one JSON line back, on a fresh connection each time.
import net from 'node:net';
import { hkdfSync } from 'node:crypto';
import type { BackgroundWork, MailCapability, MailResult, OutgoingMail, PluginKeys } from '../../plugins/plugin-api.js';
import { MAX_CAPABILITY_LINE_BYTES, type ErrorAnswer, type StartAnswer } from '../launch/capability-channel.js';

const REQUEST_TIMEOUT_MS = 120_000;

/** Where the channel is and the launch's one-time ticket, as the runtime took them from its environment. */
export interface CapabilityChannel {
  readonly socketPath: string;
  readonly ticket: string;
}

function ask(socketPath: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    conn.setTimeout(REQUEST_TIMEOUT_MS, () => conn.destroy(new Error('the platform did not answer in time')));
    conn.on('connect', () => conn.write(JSON.stringify(request) + '\n'));
    conn.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_CAPABILITY_LINE_BYTES) conn.destroy(new Error('the answer is too large'));
      else chunks.push(c);
    });
    conn.on('error', reject);
    conn.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new Error('the platform closed the channel without an answer'));
      }
    });
  });
}

/** Redeems the launch's ticket: per plugin a key derived for this tenant, and the site's URL. */
export async function redeemStartTicket(channel: CapabilityChannel): Promise<StartAnswer> {
  const answer = (await ask(channel.socketPath, { op: 'start', ticket: channel.ticket })) as StartAnswer | ErrorAnswer;
  if (!answer || answer.ok !== true) throw new Error(`the platform refused the start: ${(answer as ErrorAnswer | undefined)?.error ?? 'no answer'}`);
  return answer;
}

/** mail.send over the channel; a broken channel is "deferred" (nothing was handed over). */
export function mailCapability(socketPath: string | undefined): MailCapability {
  return {
    async send(mail: OutgoingMail): Promise<MailResult> {
      if (!socketPath) return { status: 'refused', reason: 'this worker has no mail channel' };
      try {
        const answer = (await ask(socketPath, { op: 'send', mail })) as MailResult | ErrorAnswer;
        if ('status' in answer) return answer;
        return { status: 'refused', reason: answer.error };
      } catch (err) {
        return { status: 'deferred', reason: `the platform's mail channel failed: ${(err as Error).message}` };
      }
    },
  };
}

/** The plugin's word that it has work pending without requests; false when the platform could not be told. */
export function backgroundWork(socketPath: string | undefined, pluginName: string): BackgroundWork {
  return {
    async setPending(pending: boolean): Promise<boolean> {
      if (!socketPath) return false;
      try {
        const answer = (await ask(socketPath, { op: 'work', plugin: pluginName, pending: pending === true })) as { ok?: unknown };
        return answer?.ok === true;
      } catch {
        return false;
      }
    },
  };
}

const PURPOSE_SALT = Buffer.from('tenantry plugin purpose v1');

/** Per-purpose keys from the plugin's key (HKDF again): the same purpose, the same 32 bytes. */
export function pluginKeys(pluginKey: Buffer | undefined, pluginName: string): PluginKeys {
  const cache = new Map<string, Buffer>();
  return {
    key(purpose: string): Buffer {
      if (!pluginKey) throw new Error(`plugin "${pluginName}": no keys were given to this worker`);
      if (typeof purpose !== 'string' || purpose.length === 0 || purpose.length > 200) throw new Error('a key purpose is a string of 1 to 200 characters');
      let k = cache.get(purpose);
      if (!k) {
        k = Buffer.from(hkdfSync('sha256', pluginKey, PURPOSE_SALT, Buffer.from(`purpose\0${purpose}`), 32));
        cache.set(purpose, k);
      }
      return Buffer.from(k);
    },
  };
}
