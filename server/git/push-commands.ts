// The ref updates a push asks for, read from the start of its receive-pack
// request body (pkt-lines: `<old> <new> <ref>`, the first with capabilities
// after a NUL, then a flush). Only for the audit trail's "what" when git
// refuses the pack before the pre-receive hook sees the updates.

export interface PushCommand {
  readonly oldSha: string;
  readonly newSha: string;
  readonly ref: string;
}

const MAX_COMMANDS = 50;
const COMMAND = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) (\S{1,1000})$/;

/** The commands found in `head` (the body's first bytes); stops at the flush, a malformed line or the end of `head`. */
export function pushCommandsFrom(head: Buffer): PushCommand[] {
  const out: PushCommand[] = [];
  let i = 0;
  while (i + 4 <= head.length && out.length < MAX_COMMANDS) {
    const len = Number.parseInt(head.toString('latin1', i, i + 4), 16);
    if (!Number.isInteger(len) || len === 0 || len < 4 || i + len > head.length) break;
    let line = head.toString('utf8', i + 4, i + len);
    i += len;
    const nul = line.indexOf('\0');
    if (nul >= 0) line = line.slice(0, nul);
    line = line.replace(/\n$/, '');
    if (line.startsWith('shallow ')) continue;
    const m = COMMAND.exec(line);
    if (!m) break;
    out.push({ oldSha: m[1]!, newSha: m[2]!, ref: m[3]! });
  }
  return out;
}
