/**
 * Compile-time tests of the task API's types. This file is only type-checked (`tsc -p
 * tsconfig.json` includes test/); it is never imported, and `typeTests` is never called, so no
 * task is registered. Every `@ts-expect-error` line must be an error, or tsc fails.
 */
import { background, getResult, idempotencyKey, schedule, waitFor, type TaskContext, type TaskDefinition, type TaskRef } from '../../core/index.js';

interface User {
  id: number;
  name: string;
  tags: string[];
  address?: { city: string; zip: string | null };
}

export async function typeTests(): Promise<void> {
  const add = background(async function add(a: number, b: number) {
    return a + b;
  });

  // Calls with the right arguments enqueue and return a TaskRef.
  const ref: TaskRef = await add(1, 2);
  void ref;

  // @ts-expect-error a wrong argument type is an error
  await add('1', 2);
  // @ts-expect-error too few arguments is an error
  await add(1);
  // @ts-expect-error no arguments is an error
  await add();
  // @ts-expect-error too many arguments is an error
  await add(1, 2, 3);

  // A schedule(...) object is accepted as the last argument.
  await add(1, 2, schedule(90, { priority: 5 }));
  await add(1, 2, schedule({ minutes: 5 }));
  // @ts-expect-error a schedule does not stand in for a missing argument
  await add(1, schedule(90));
  // @ts-expect-error a schedule is only accepted last
  await add(schedule(90), 1, 2);

  // Parameters that cannot survive JSON make the background() call a compile error.
  // @ts-expect-error Date parameter
  background(function withDate(_d: Date) {});
  // @ts-expect-error Map parameter
  background(function withMap(_m: Map<string, number>) {});
  // @ts-expect-error Set parameter
  background(function withSet(_s: Set<number>) {});
  // @ts-expect-error bigint parameter
  background(function withBigint(_n: bigint) {});
  // @ts-expect-error function parameter
  background(function withCallback(_cb: () => void) {});
  // @ts-expect-error an object containing a Date
  background(function withNestedDate(_o: { user: { createdAt: Date } }) {});
  // @ts-expect-error an array of Dates
  background(function withDates(_ds: Date[]) {});
  // @ts-expect-error a union with a Date
  background(function withMaybeDate(_d: string | Date) {});
  // @ts-expect-error a parameter that can only be undefined (JSON has no undefined; `x?: T` is fine)
  background(function withUndefined(_u: undefined) {});
  // @ts-expect-error an object with an undefined-only field
  background(function withUndefinedField(_o: { gone: undefined }) {});
  // @ts-expect-error a Date parameter with options too
  background({ queue: 'q' }, function withDateOpts(_d: Date) {});
  // @ts-expect-error a Date parameter on a context task
  background({ context: true }, function withDateCtx(_ctx: TaskContext, _d: Date) {});

  // Optional parameters and interfaces of plain JSON fields are fine.
  const greet = background(function greet(name: string, times?: number) {
    return `${name} x${times ?? 1}`;
  });
  await greet('a');
  await greet('a', 2);
  await greet('a', 2, schedule(0));
  // @ts-expect-error a wrong type for the optional parameter
  await greet('a', '2');
  // getResult and waitFor carry the return type from a handle.
  const handle = await greet('b');
  const fromHandle: string = (await getResult(handle)).returnValue;
  const waited: string = (await waitFor(handle)).returnValue;
  void fromHandle;
  void waited;
  // Trailing optional arguments may be left out before a schedule...
  await greet('a', schedule(0));
  // ...but not passed as undefined, which JSON cannot carry.
  // @ts-expect-error undefined for an optional argument before a schedule
  await greet('a', undefined, schedule(0));

  const saveUser = background(async function saveUser(_user: User, _extra: { ok: boolean; list: Array<number | null> }) {});
  await saveUser({ id: 1, name: 'n', tags: [] }, { ok: true, list: [1, null] });
  // @ts-expect-error a missing field of the interface
  await saveUser({ id: 1, name: 'n' }, { ok: true, list: [] });

  // unknown parameters are accepted (checked at run time).
  background(function anything(_x: unknown) {});

  // background({ context: true }, (ctx, …) => …) infers the arguments without ctx.
  const withCtx = background({ context: true, name: 'withCtx' }, async (ctx, id: number) => {
    const c: TaskContext = ctx;
    return `${c.name}:${id}`;
  });
  const ctxDef: TaskDefinition<[id: number], Promise<string>> = withCtx;
  void ctxDef;
  await withCtx(1);
  await withCtx(1, schedule(10));
  // @ts-expect-error ctx is not an argument of the call
  await withCtx({} as TaskContext, 1);
  // @ts-expect-error a wrong argument type on a context task
  await withCtx('1');

  // .now() returns the function's return type.
  const sum: Promise<number> = add.now(1, 2);
  void sum;
  // @ts-expect-error .now() of an async function returns a promise, not a number
  const notNumber: number = add.now(1, 2);
  void notNumber;
  const text: string = greet.now('a');
  void text;
  // @ts-expect-error .now() takes the same arguments
  greet.now(1);
  const fromCtx: Promise<string> = withCtx.now(5);
  void fromCtx;
  // @ts-expect-error .now() of a context task takes no ctx
  void withCtx.now({} as TaskContext, 5);

  // .using() keeps the types.
  const urgent = add.using({ priority: 10, queue: 'urgent', schedule: 5 });
  const urgentDef: TaskDefinition<[a: number, b: number], Promise<number>> = urgent;
  void urgentDef;
  await urgent(1, 2);
  await urgent(1, 2, schedule(0));
  // @ts-expect-error .using() keeps the argument types
  await urgent('1', 2);
  const urgentSum: Promise<number> = urgent.now(1, 2);
  void urgentSum;
  // @ts-expect-error .using() accepts only call options
  add.using({ name: 'other' });

  // .bulk() takes argument tuples.
  await add.bulk([
    [1, 2],
    [3, 4],
  ]);
  // @ts-expect-error .bulk() checks each call's arguments
  await add.bulk([['1', 2]]);

  // An idempotency key: a string at the call site, a function of each call's arguments in bulk.
  await add(1, 2, idempotencyKey('add:1:2'));
  await add(1, 2, schedule(5, { idempotencyKey: 'add:1:2' }));
  await add.bulk([[1, 2]], { idempotencyKey: (a, b) => `add:${a.toFixed(0)}:${b.toFixed(0)}` });
  // @ts-expect-error in bulk, one key for every call would make them one call
  await add.bulk([[1, 2]], { idempotencyKey: 'add' });
  // @ts-expect-error the key is a call-site option only
  add.using({ idempotencyKey: 'add' });

  // A cron schedule's args are checked against the parameters, and required when there are any.
  background({ cron: '0 3 * * *', args: ['sales'] }, async function cronKind(kind: string) {
    void kind;
  });
  background({ cron: '0 3 * * *' }, async function cronNone() {});
  background({ cron: '0 3 * * *' }, async function cronOptional(kind?: string) {
    void kind;
  });
  background({ queue: 'mail' }, async function noCron(kind: string) {
    void kind;
  });
  background({ cron: [{ cron: '0 3 * * *', args: [1] }, { cron: '0 4 * * *', args: [2], key: 'late' }] }, async function cronList(n: number) {
    void n;
  });
  // @ts-expect-error one expression without args, for a task that takes a required argument
  background({ cron: '0 3 * * *' }, async function cronMissing(n: number) {
    void n;
  });
  // @ts-expect-error args of the wrong type
  background({ cron: '0 3 * * *', args: ['x'] }, async function cronWrong(n: number) {
    void n;
  });
  // @ts-expect-error a schedule in a list without args, for a task that takes a required argument
  background({ cron: [{ cron: '0 3 * * *' }] }, async function cronListMissing(n: number) {
    void n;
  });
  // With a context first, the same.
  // @ts-expect-error one expression without args (context)
  background({ context: true, cron: '0 3 * * *' }, async function cronCtx(ctx: TaskContext, n: number) {
    void ctx;
    void n;
  });
}
