/**
 * The logger's line formats (core/base/log.ts) and LineBuffer, which gathers the lines of one
 * turn of the event loop into one write (a worker logs a line per task).
 */
import { expect } from 'chai';
import { createLogger, LineBuffer } from '../../core/base/log.js';

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

describe('logger line formats', () => {
  it('human: time, padded level, message, then base and line fields as key=value (a line field wins, in the base field\'s place)', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), base: { worker: 'w-1', region: 'eu' }, level: 'debug' });
    log.info('task succeeded', { id: '17', attempt: 1, duration_ms: 84.2, region: 'us', outcome: 'succeeded' });
    log.debug('task started', { id: '18', name: 'resize' });
    log.warn('with spaces', { error: 'Error: it broke', none: null, gone: undefined, empty: '', nan: Number.NaN, ok: false, obj: { a: [1, 'b c'] } });
    expect(lines[0]).to.match(TIME);
    expect(lines.map((l) => l.replace(TIME, ''))).to.deep.equal([
      'INFO  task succeeded worker=w-1 region=us id=17 attempt=1 duration_ms=84.2 outcome=succeeded',
      'DEBUG task started worker=w-1 region=eu id=18 name=resize',
      'WARN  with spaces worker=w-1 region=eu error="Error: it broke" nan=null ok=false obj={"a":[1,"b c"]}',
    ]);
  });

  it('json: one object with level, time, msg, then the fields (as JSON.stringify of them merged)', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', write: (l) => lines.push(l), base: { worker: 'w-1' } });
    log.info('task succeeded', { id: '17', attempt: 1, gone: undefined, worker: 'w-2' });
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(parsed)).to.deep.equal(['level', 'time', 'msg', 'worker', 'id', 'attempt']);
    expect(parsed).to.include({ level: 'info', msg: 'task succeeded', worker: 'w-2', id: '17', attempt: 1 });
  });

  it('drops lines below its level, says which levels it writes, and masks URL passwords in warnings', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: 'warn' });
    log.info('dropped');
    log.warn('cannot reach postgres://app:s3cret@db/app');
    expect(log.enabled!('info')).to.equal(false);
    expect(log.enabled!('error')).to.equal(true);
    expect(lines).to.have.length(1);
    expect(lines[0]).not.to.include('s3cret');
  });
});

describe('LineBuffer', () => {
  it('hands the lines of one turn of the event loop to its sink in one write, each ending in a newline', async () => {
    const chunks: string[] = [];
    const buf = new LineBuffer((c) => chunks.push(c));
    for (let i = 0; i < 1000; i++) buf.line(`line ${i}`);
    expect(chunks, 'nothing before the turn ends').to.deep.equal([]);
    await new Promise((r) => setImmediate(r));
    expect(chunks).to.have.length(1);
    expect(chunks[0]!.split('\n')).to.have.length(1001);
    expect(chunks[0]!.endsWith('line 999\n')).to.equal(true);
  });

  it('writes at once when maxChars are waiting, and on flush(); an empty flush writes nothing', async () => {
    const chunks: string[] = [];
    const buf = new LineBuffer((c) => chunks.push(c), 20);
    buf.line('0123456789');
    expect(chunks).to.deep.equal([]);
    buf.line('abcdefghij');
    expect(chunks).to.deep.equal(['0123456789\nabcdefghij\n']);
    buf.line('last');
    buf.flush();
    buf.flush();
    expect(chunks).to.deep.equal(['0123456789\nabcdefghij\n', 'last\n']);
    await new Promise((r) => setImmediate(r));
    expect(chunks).to.have.length(2);
  });
});
