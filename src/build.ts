import { readFileSync } from 'node:fs';

/**
 * What this process runs, for allowgate_build_info: the package version, and the source revision
 * when the image build recorded one (ALLOWGATE_REVISION, set by the Dockerfile from its REVISION
 * build argument).
 */
export const BUILD: { readonly version: string; readonly revision: string } = {
  version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  revision: process.env['ALLOWGATE_REVISION'] || 'unknown',
};
