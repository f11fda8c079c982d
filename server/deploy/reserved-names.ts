// Names at the top of a release that a deploy may not bring: `.tenantry/` holds
// what the platform writes into a release (its manifest and the compressed
// copies, trusted when the release is loaded), so a site may not ship its own.
// And the top folders that are part of the site layout, never stripped as a
// wrapping folder.
export const PLATFORM_RESERVED_TOP: ReadonlySet<string> = new Set(['.tenantry']);

export const LAYOUT_FOLDERS: ReadonlySet<string> = new Set(['public', 'api']);
