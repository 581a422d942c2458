/**
 * The maxArgsBytes setting on every database: arguments over the limit are refused with an error
 * naming their size and the setting, storing nothing; the size is counted in UTF-8 bytes.
 */
import { expect } from 'chai';
import { background, configure, ValidationError } from '../../core/index.js';
import { contract } from '../helpers/databases.js';
import { manualClockSuite } from '../helpers/manual-clock.js';
import { countRows, taskRows } from '../helpers/stored-rows.js';

const DEFAULT_MAX_ARGS_BYTES = 1024 * 1024;

const sized = background({ name: 'gaps.sized' }, function sized(_text: string) {});

const T0 = Date.UTC(2032, 3, 1, 9);

contract('maxArgsBytes', (db) => {
  manualClockSuite(db, T0);
  const count = (table: string) => countRows(db, table);
  const pendingRows = () => taskRows(db);

  afterEach(() => configure({ maxArgsBytes: DEFAULT_MAX_ARGS_BYTES }));

  it('refuses arguments over maxArgsBytes with a ValidationError naming their size and the setting, storing nothing', async () => {
    configure({ maxArgsBytes: 64 });
    // ["x…x"] with 61 x: 65 bytes of JSON.
    await expectReject(
      () => sized('x'.repeat(61)),
      ValidationError,
      /^gaps\.sized: arguments are 65 bytes of JSON — expected at most 64 \(the maxArgsBytes setting\)/,
    );
    expect(await count(db.store.tables.tasks)).to.equal(0);
    expect(await count(db.store.tables.completed)).to.equal(0);
  });

  it('counts UTF-8 bytes, not characters, and accepts a call of exactly maxArgsBytes', async () => {
    configure({ maxArgsBytes: 64 });
    // ["é…é"]: 4 + 2 bytes per é. 31 of them are 35 characters but 66 bytes.
    await expectReject(() => sized('é'.repeat(31)), ValidationError, /arguments are 66 bytes of JSON — expected at most 64/);
    const atLimit = await sized('é'.repeat(30));
    const ascii = await sized('x'.repeat(60));
    expect([atLimit.outcome, ascii.outcome]).to.deep.equal(['created', 'created']);
    const rows = await pendingRows();
    expect(rows.map((r) => Buffer.byteLength(String(r.args)))).to.deep.equal([64, 64]);
  });
});

async function expectReject(fn: () => Promise<unknown>, cls: new (...a: any[]) => Error, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(cls);
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected ${cls.name} matching ${pattern}`);
}
