/**
 * The dashboard room's public surface: `createDashboard` (mount it in an app), `serveDashboard`
 * (its own server, for `bgtasks dashboard`) and the `DashboardSource` contract with storage.
 */
export { createDashboard, normalizeBasePath, type Dashboard, type DashboardLogger, type DashboardOptions } from './dashboard.js';
export { serveDashboard, isLoopback, DEFAULT_HOST, DEFAULT_PORT, type DashboardServer, type ServeOptions } from './serve.js';
export type * from './source.js';
