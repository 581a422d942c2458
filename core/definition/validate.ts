/**
 * Optional runtime validation of a task's arguments: `background({ validate }, fn)` with any
 * validator function or a Standard Schema object (zod, valibot, arktype…, validating the argument
 * tuple). It runs at enqueue (the caller gets the error, nothing is stored) and again before each
 * execution (arguments stored by older code fail the task for good, with the message).
 */
import { PermanentTaskError, ValidationError } from '../errors.js';

/** The part of the Standard Schema v1 interface we use (https://standardschema.dev). */
export interface StandardSchemaV1<Input = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult | Promise<StandardResult>;
    readonly types?: { readonly input: Input; readonly output: unknown };
  };
}

type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> }> };

/**
 * A validator: a Standard Schema for the argument tuple, or a function that throws (or returns
 * `false` or a message string) when the arguments are not acceptable.
 */
export type ArgsValidator<A extends unknown[] = unknown[]> = StandardSchemaV1<A> | ((args: A) => unknown);

export function isStandardSchema(v: unknown): v is StandardSchemaV1 {
  const std = (v as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  return typeof v === 'object' && v !== null && typeof std === 'object' && std !== null && typeof std.validate === 'function';
}

export function checkValidator(v: unknown, where: string): void {
  if (v === undefined || typeof v === 'function' || isStandardSchema(v)) return;
  throw new ValidationError(`Invalid validate in ${where}: expected a function or a Standard Schema object (zod, valibot, …)`);
}

function issuePath(path: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined): string {
  if (!path || path.length === 0) return '';
  const keys = path.map((p) => (typeof p === 'object' && p !== null ? p.key : p));
  const [first, ...rest] = keys;
  const head = typeof first === 'number' ? `argument ${first + 1}` : String(first);
  return `${head}${rest.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}: `;
}

/** The reason the arguments are invalid, or null when they are fine. */
async function problem(validator: ArgsValidator, args: unknown[]): Promise<string | null> {
  if (isStandardSchema(validator)) {
    const result = await validator['~standard'].validate(args);
    if (!result.issues || result.issues.length === 0) return null;
    return result.issues.map((i) => `${issuePath(i.path)}${i.message}`).join('; ');
  }
  try {
    const r = await (validator as (a: unknown[]) => unknown)(args);
    if (r === false) return 'rejected by the validator';
    if (typeof r === 'string') return r;
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** At enqueue: a ValidationError for the caller. */
export async function validateForEnqueue(name: string, validator: ArgsValidator | undefined, args: unknown[]): Promise<void> {
  if (!validator) return;
  const p = await problem(validator, args);
  if (p !== null) throw new ValidationError(`${name}: invalid arguments — ${p}`);
}

/** Before execution: a PermanentTaskError (retrying cannot make stored arguments valid). */
export async function validateForExecution(name: string, id: string, validator: ArgsValidator | undefined, args: unknown[]): Promise<void> {
  if (!validator) return;
  const p = await problem(validator, args);
  if (p !== null) throw new PermanentTaskError(`Task ${name} #${id}: its stored arguments are invalid — ${p}`);
}
