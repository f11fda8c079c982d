// A problem found in a site's `_redirects` or `_headers` when its release is
// indexed: the rule (or the whole file) is left out and the release still goes
// live, as on Netlify, which warns and deploys. One shape from the parser to
// the deploy answer, the CLI and the `remote:` lines of a push.

export type RuleFile = '_redirects' | '_headers';

export interface RuleWarning {
  readonly file: RuleFile;
  /** 1-based line of the file; 0 when the problem is the file as a whole (a folder, unreadable). */
  readonly line: number;
  /** What is wrong and what was done about it; never repeats a header value (it may hold a password). */
  readonly message: string;
}

/** `_headers line 4: ...` or `_redirects: ...` for the whole file. */
export function formatRuleWarning(w: RuleWarning): string {
  return w.line > 0 ? `${w.file} line ${w.line}: ${w.message}` : `${w.file}: ${w.message}`;
}
