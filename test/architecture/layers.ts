/**
 * The intended order of src/: each folder sits in a layer and imports only from lower layers (or
 * from itself). Checked over the real import graph by imports.test.ts, which names the rule a
 * back-edge breaks. A new folder must be placed here before anything can import it.
 */

export interface Layer {
  readonly name: string;
  /** Folders under src/ (a top-level file counts as the folder of its name: `app` is src/app.ts). */
  readonly folders: readonly string[];
}

/** Lowest first. Folders in one layer are peers: neither may import the other. */
export const LAYERS: readonly Layer[] = [
  { name: 'base: addresses and HTTP answers', folders: ['ip', 'http', 'build'] },
  { name: 'leaves: observability contracts, list model, client IP, identity, forwarding', folders: ['observability', 'list', 'client-ip', 'identity', 'proxy'] },
  { name: 'audit trail model and embedded logs', folders: ['audit'] },
  { name: 'stores', folders: ['store'] },
  { name: 'policy cache over the store', folders: ['policy'] },
  { name: 'API keys: whose a presented key is (the registry through the store, introspection)', folders: ['keys'] },
  { name: 'list management and the decision', folders: ['acl', 'gateway'] },
  { name: 'surfaces: management API and external authorization', folders: ['admin', 'authz'] },
  { name: 'configuration and process roles', folders: ['config', 'workers'] },
  { name: 'composition root', folders: ['app'] },
  { name: 'command line', folders: ['cli'] },
];

/**
 * The admin console runs in a browser: it may import only code with no Node built-ins and no
 * server state (rule syntax checks, the admin API's contract), never the server's modules.
 */
export const BROWSER: { readonly folder: string; readonly mayImport: readonly string[] } = {
  folder: 'console',
  mayImport: ['console', 'ip/cidr.ts', 'ip/rule.ts', 'ip/address.ts', 'ip/range.ts', 'admin/api-schemas.ts'],
};

/**
 * Edges allowed against the order, each with why. Keep this list short: a needed back-edge
 * usually means a type belongs one layer down.
 */
export const EXCEPTIONS: readonly { readonly from: string; readonly to: string; readonly why: string }[] = [];
