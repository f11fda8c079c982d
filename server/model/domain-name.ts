// Validation of custom domain names (lowercase, LDH labels, at least two labels
// unless it is a *.localhost name).
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeDomain(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const d = input.trim().toLowerCase().replace(/\.$/, '');
  if (d.length < 1 || d.length > 253) return undefined;
  const labels = d.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return d;
}
