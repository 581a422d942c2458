/**
 * What every database can store, and how to say what one refused. An error record is written as
 * text in three places (the `errors` JSON, `last_error`, the completed row), and what a task threw
 * can hold anything: PostgreSQL's text cannot hold U+0000 at all, and a message of many megabytes
 * could exceed a statement's size limit (MySQL/MariaDB's `max_allowed_packet`). Return values are
 * JSON (no NUL survives JSON's escaping), but their size can reach that limit: the successes of a
 * batch are grouped into statements of bounded size, and one that no statement can hold is
 * refused before it is sent.
 */
import type { Knex } from 'knex';
import type { ErrorRecord } from '../types.js';
import type { Dialect } from './dialects/dialect.js';

/** The longest class name and message kept in a record (the stack is cut likewise by formatError). */
const MAX_CLASS_CHARS = 200;
const MAX_MESSAGE_CHARS = 16_000;

/**
 * PostgreSQL: text cannot hold U+0000 ("invalid byte sequence for encoding UTF8: 0x00"). It is
 * written as the six characters `\u0000` on every database, so a record reads the same everywhere
 * and says what was there.
 */
export const NUL_SHOWN_AS = '\\u0000';

function storableText(text: string, max: number): string {
  const clean = text.includes('\u0000') ? text.replaceAll('\u0000', NUL_SHOWN_AS) : text;
  return clean.length > max ? `${clean.slice(0, max)}\n… (truncated from ${clean.length} characters)` : clean;
}

/** The record with NUL characters made visible and its class and message cut to a storable size. */
export function storableRecord(r: ErrorRecord): ErrorRecord {
  return {
    ...r,
    class: storableText(r.class, MAX_CLASS_CHARS),
    message: storableText(r.message, MAX_MESSAGE_CHARS),
    stack: storableText(r.stack, Number.MAX_SAFE_INTEGER),
  };
}

/**
 * A driver error's message, short enough for a log line or an error record: knex puts the whole
 * statement before the driver's words (`insert into … - read ECONNRESET`), which for a large
 * result is megabytes. The start and the end (where the driver's reason is) are kept.
 */
export function driverMessage(err: unknown, max = 400): string {
  const e = err as { sqlMessage?: unknown; message?: unknown; code?: unknown } | null;
  const text = typeof e?.sqlMessage === 'string' ? e.sqlMessage : typeof e?.message === 'string' ? e.message : String(err);
  const msg = text || String(e?.code ?? 'unknown error');
  if (msg.length <= max) return msg;
  const half = Math.floor(max / 2);
  return `${msg.slice(0, half)} … ${msg.slice(-half)}`;
}

/** Successes per statement (their inputs travel as one JSON document or four arrays). */
const COMPLETE_CHUNK = 1000;
/**
 * Return values per success statement, in the bound below: many large results in one statement
 * could exceed a statement's size limit (MySQL/MariaDB's max_allowed_packet, 16 MiB by default on
 * MariaDB) where each alone fits.
 */
const COMPLETE_BUDGET_BYTES = 4 * 1024 * 1024;
/** Return values shorter than this are far from any statement limit (no exact size is needed). */
const SMALL_RESULT_CHARS = 256 * 1024;
/** Room for the rest of a one-result statement: its SQL and the other values. */
const STATEMENT_SLACK_BYTES = 16 * 1024;

interface Success {
  returnValue: string | null;
  successorAt: number | null;
}

/**
 * At most the bytes a success takes in its statement: UTF-8 and two rounds of escaping (JSON,
 * then the driver's) at most quadruple a text.
 */
function boundBytes(c: Success): number {
  return 64 + 4 * (c.returnValue?.length ?? 0);
}

/**
 * The statements that record `items`: plain successes first, then those with a successor (written
 * differently), each statement at most COMPLETE_CHUNK successes and a bounded number of bytes (a
 * larger one alone); and the successes no statement of this database can hold, with the reason
 * (its size and the limit).
 */
export async function planSuccessStatements<T extends Success>(
  items: readonly T[],
  dialect: Dialect,
  knex: Knex,
): Promise<{ statements: T[][]; refused: Array<{ item: T; reason: string }> }> {
  const refused: Array<{ item: T; reason: string }> = [];
  let writable: readonly T[] = items;
  let budget = COMPLETE_BUDGET_BYTES;
  if (dialect.statementLimit && items.some((c) => boundBytes(c) > COMPLETE_BUDGET_BYTES / 4)) {
    const limit = await dialect.statementLimit(knex);
    budget = Math.min(budget, limit.maxBytes - STATEMENT_SLACK_BYTES);
    writable = items.filter((c) => {
      const rv = c.returnValue;
      if (rv === null || rv.length <= SMALL_RESULT_CHARS) return true;
      const bytes = limit.resultBytes(rv) + STATEMENT_SLACK_BYTES;
      if (bytes <= limit.maxBytes) return true;
      refused.push({
        item: c,
        reason: `its return value is ${Buffer.byteLength(rv)} bytes of JSON, and the statement that records it about ${bytes} bytes, over the database server's ${limit.name} of ${limit.maxBytes} bytes — raise ${limit.name} on the server, or return less (store large data elsewhere and return its id)`,
      });
      return false;
    });
  }
  const statements = [
    ...chunksOf(writable.filter((c) => c.successorAt === null), budget),
    ...chunksOf(writable.filter((c) => c.successorAt !== null), budget),
  ];
  return { statements, refused };
}

/** Consecutive groups of at most COMPLETE_CHUNK items and `budget` bytes (a larger item alone). */
function chunksOf<T extends Success>(items: readonly T[], budget: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const c of items) {
    const b = boundBytes(c);
    if (cur.length > 0 && (cur.length >= COMPLETE_CHUNK || bytes + b > budget)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(c);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
