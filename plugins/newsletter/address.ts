// Address syntax check and normalisation. One subscriber per normalised
// address: trimmed, Unicode NFC, lower-cased, the domain in its ASCII (IDNA)
// form. Quoted local parts, comments and IP-literal domains are refused: they
// are legal in RFC 5321 but are almost always typos or abuse on a subscribe
// form. Provider-specific aliases (dots or "+tag" at Gmail) are kept as they
// are: they may be different mailboxes elsewhere.
import { domainToASCII } from 'node:url';

const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The normalised address, or null when it is not a plausible mailbox. */
export function normaliseAddress(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  const raw = input.normalize('NFC').trim().toLowerCase();
  if (raw.length === 0 || raw.length > 254) return null;
  const at = raw.lastIndexOf('@');
  if (at <= 0 || at === raw.length - 1) return null;
  const local = raw.slice(0, at);
  const domainInput = raw.slice(at + 1).replace(/\.$/, '');
  if (local.length > 64 || !LOCAL_PART.test(local)) return null;
  const domain = domainToASCII(domainInput);
  if (!domain || domain.length > 253) return null;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return null;
  // The top-level label is never all digits (that would be an IP address).
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return null;
  const address = `${local}@${domain}`;
  return address.length <= 254 ? address : null;
}
