/**
 * One error record shape on every database: a failed task's errors read through the API
 * (`getResult`, `TaskResult.errors` and its JSON) and through `bgtasks show`'s record (its JSON)
 * have the same fields with the same values, the names DEP 0014 gives a TaskError; `show`'s old
 * names (`class`, `stack`) still read, as deprecated copies; the stored history keeps its keys.
 */
import { expect } from 'chai';
import { background, getResult } from '../../core/index.js';
import { taskDetail } from '../../core/store/task-detail.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';

const T0 = Date.UTC(2030, 5, 15, 12);
const FIELDS = ['exceptionClass', 'message', 'traceback', 'attempt', 'at', 'workerId'];

class BadInput extends Error {
  override name = 'BadInput';
}

const boom = background({ name: 'rec.boom', maxAttempts: 2 }, function boom(n: number) {
  throw new BadInput(`no ${n}`, { cause: new Error('the root') });
});

contract('error records: one shape in the API and in show', (db) => {
  const { clock, drain } = manualClockSuite(db, T0);

  it('a failed task\'s errors have the same fields and values through getResult and show --json; class and stack still read', async () => {
    const ref = await boom(3);
    await drain({ workerId: 'w-rec' });
    clock.advance(60); // past the retry's backoff
    await drain({ workerId: 'w-rec' });

    const r = await getResult(ref.id);
    expect(r.status).to.equal('FAILED');
    expect(r.errors).to.have.length(2);
    const api = JSON.parse(JSON.stringify(r)).errors as Array<Record<string, unknown>>;
    const show = JSON.parse(JSON.stringify(await taskDetail(db.store, ref.id, clock.now()))).errors as Array<Record<string, unknown>>;
    expect(api.map((e) => Object.keys(e))).to.deep.equal([FIELDS, FIELDS]);
    expect(show.map((e) => Object.keys(e))).to.deep.equal([
      [...FIELDS, 'class', 'stack'],
      [...FIELDS, 'class', 'stack'],
    ]);
    show.forEach((e, i) => {
      const { class: cls, stack, ...current } = e;
      expect(current).to.deep.equal(api[i]);
      // The deprecated names are copies of the new ones.
      expect(cls).to.equal(e.exceptionClass);
      expect(stack).to.equal(e.traceback);
    });
    expect(r.errors.map((e) => [e.exceptionClass, e.message, e.attempt, e.workerId])).to.deep.equal([
      ['BadInput', 'no 3', 1, 'w-rec'],
      ['BadInput', 'no 3', 2, 'w-rec'],
    ]);
    expect(r.errors[0]!.traceback).to.match(/^BadInput: no 3\n/).and.contain('Caused by: Error: the root');
    expect(r.errors[0]!.at).to.be.instanceOf(Date);

    // Stored rows keep their keys: rows written before, and workers of the previous version, read them.
    const [row] = (await db.store.knex(db.store.tables.completed).select('errors').where('task_id', ref.id)) as Array<{ errors: string }>;
    expect(Object.keys((JSON.parse(row!.errors) as object[])[0]!)).to.deep.equal(['class', 'message', 'stack', 'attempt', 'at', 'workerId']);
  });
});
