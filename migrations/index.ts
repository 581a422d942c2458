/**
 * The migrations, in order. They are listed in code (not read from a directory) so that compiled
 * and TypeScript runs see the same set, and so that each receives the table prefix and dialect.
 */
import type { Knex } from 'knex';
import type { Dialect } from '../core/store/dialects/dialect.js';
import * as m001 from './001_initial.js';
import * as m002 from './002_recurring.js';

export interface MigrationContext {
  prefix: string;
  dialect: Dialect;
}

export interface Migration {
  name: string;
  up(knex: Knex, ctx: MigrationContext): Promise<void>;
  down(knex: Knex, ctx: MigrationContext): Promise<void>;
}

export const MIGRATIONS: readonly Migration[] = [m001, m002];
