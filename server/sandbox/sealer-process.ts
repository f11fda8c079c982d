// Entry of the release sealer, a long-lived child of the root supervisor:
//   node sealer-process.js <platform uid>
// One JSON line in on stdin per release ({ id, dir, gid }), one line out
// ({ id, ok, error? }). For each it takes the platform user's uid and the
// tenant's gid as its *effective* ids, re-groups and re-modes the release with
// those rights only (an owner may chgrp to a group it holds, no privilege), then
// takes root back. So, as with `setpriv ... chgrp -R`, a link swapped into the
// release cannot make it touch a file the platform user does not own; unlike
// that chain, no process is started per deploy.
// Requests are handled one at a time and synchronously: nothing else runs in
// this process while its effective ids are lowered.
import readline from 'node:readline';
import { sealRelease } from './file-modes.js';

export interface SealRequest {
  readonly id: number;
  readonly dir: string;
  readonly gid: number;
}

export interface SealReply {
  readonly id: number;
  readonly ok: boolean;
  readonly error?: string;
}

function sealAs(platformUid: number, dir: string, gid: number): void {
  process.setegid!(gid);
  process.seteuid!(platformUid);
  try {
    sealRelease(dir, gid, { uid: platformUid, gid });
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
  }
}

function main(): void {
  const platformUid = Number(process.argv[2]);
  if (!Number.isInteger(platformUid) || platformUid <= 0 || process.getuid?.() !== 0) {
    process.stderr.write('tenantry sealer: needs root and the platform user\'s uid\n');
    process.exit(2);
  }
  process.setgroups!([]);
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let reply: SealReply;
    let id = -1;
    try {
      const r = JSON.parse(line) as SealRequest;
      id = r.id;
      if (!Number.isInteger(r.gid) || r.gid <= 0 || typeof r.dir !== 'string' || !r.dir.startsWith('/')) throw new Error('malformed request');
      sealAs(platformUid, r.dir, r.gid);
      reply = { id, ok: true };
    } catch (err) {
      reply = { id, ok: false, error: (err as Error).message };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
  lines.on('close', () => process.exit(0));
}

main();
