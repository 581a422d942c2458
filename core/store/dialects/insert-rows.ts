/**
 * Many new task rows as one uniform table (the same columns for every row), for the dialects'
 * multi-row inserts. New rows leave out columns at their default (see rows.ts newTaskRow), so a
 * chunk carries only the columns some row of it sets; the others take their default here.
 */

/** The column defaults of the tasks table (migration 001); other columns default to NULL. */
const DEFAULTS: Record<string, unknown> = {
  priority: 0,
  attempts: 0,
  repeat_every_ms: 0,
  repeat_on_failure: true,
  cancel_requested: false,
};

/** PostgreSQL array types of the tasks table's columns, for `unnest(?::type[], …)`. */
export const PG_TYPES: Record<string, string> = {
  name: 'text',
  args: 'text',
  hash: 'text',
  queue: 'text',
  priority: 'integer',
  verbose_name: 'text',
  creator_type: 'text',
  creator_id: 'text',
  run_at: 'bigint',
  scheduled_at: 'bigint',
  enqueued_at: 'bigint',
  attempts: 'integer',
  max_attempts: 'integer',
  max_run_time_ms: 'bigint',
  expires_at: 'bigint',
  repeat_every_ms: 'bigint',
  repeat_cron: 'text',
  timezone: 'text',
  repeat_until: 'bigint',
  repeat_on_failure: 'boolean',
  recurring_key: 'text',
};

export interface UniformRows {
  columns: string[];
  /** One array of values per row, in `columns` order. */
  values: unknown[][];
}

export function uniformRows(rows: readonly Record<string, unknown>[] | UniformRows): UniformRows {
  if (!Array.isArray(rows)) return rows as UniformRows;
  const set = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) set.add(k);
  const columns = [...set];
  const values = (rows as readonly Record<string, unknown>[]).map((r) => columns.map((c) => (c in r ? r[c] : (DEFAULTS[c] ?? null))));
  return { columns, values };
}

/** Splits `n` rows into chunks of at most `size`. */
export function* chunks<T>(list: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < list.length; i += size) yield list.slice(i, i + size);
}

/**
 * One chunk of uniform rows, split for a JSON-fed INSERT … SELECT: the columns whose value is the
 * same in every row (a bulk() call shares its template: name, times, queue, …) are bound once as
 * parameters; only the others travel per row. Less JSON to build and for the database to parse.
 */
export interface SplitChunk {
  /** Per column, in order: its constant value, or the position of its value in each row of `perRow`. */
  sources: Array<{ constant: unknown } | { at: number }>;
  /** The constant values, in column order (the order their placeholders appear). */
  constants: unknown[];
  /** Each row's varying values (possibly none). */
  perRow: unknown[][];
}

export function splitChunk(columns: readonly string[], chunk: readonly unknown[][]): SplitChunk {
  const first = chunk[0] ?? [];
  const varying: number[] = [];
  const sources: SplitChunk['sources'] = [];
  const constants: unknown[] = [];
  columns.forEach((_, c) => {
    const v = first[c];
    let same = true;
    for (let r = 1; r < chunk.length && same; r++) same = chunk[r]![c] === v;
    if (same) {
      sources.push({ constant: v });
      constants.push(v);
    } else {
      sources.push({ at: varying.length });
      varying.push(c);
    }
  });
  const perRow = chunk.map((row) => varying.map((c) => row[c]));
  return { sources, constants, perRow };
}
