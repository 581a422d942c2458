/**
 * The migrations, in order. They are listed in code (not read from a directory) so that compiled
 * and TypeScript runs see the same set, and so that each receives the table prefix and dialect.
 * Released migrations are never edited: a change to the schema is a new file added here.
 */
import type { Migration } from './index.js';
import * as m001 from './001_initial.js';
import * as m002 from './002_recurring.js';
import * as m003 from './003_exact_identifiers.js';
import * as m004 from './004_flow_control.js';
import * as m005 from './005_worker_registry.js';
import * as m006 from './006_dashboard.js';
import * as m007 from './007_trace_context.js';
import * as m008 from './008_worker_pid_namespace.js';
import * as m009 from './009_idempotency_key.js';
import * as m010 from './010_worker_liveness.js';
import * as m011 from './011_key_walk_index.js';
import * as m012 from './012_hot_path_indexes.js';
import * as m013 from './013_claim_index_unlocked_last.js';

export const MIGRATIONS: readonly Migration[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009, m010, m011, m012, m013];
