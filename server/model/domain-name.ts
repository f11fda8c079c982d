// Host names: validation of custom domain names (lowercase, LDH labels, at
// least two labels unless it is a *.localhost name), and the Host header of a request.
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeDomain(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const d = input.trim().toLowerCase().replace(/\.$/, '');
  if (d.length < 1 || d.length > 253) return undefined;
  const labels = d.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return d;
}

/** Host header -> lowercase name without port or trailing dot; '' when absent or malformed. */
export function normalizeHost(header: string | undefined): string {
  if (!header) return '';
  let h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : '';
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}
