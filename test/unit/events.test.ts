/**
 * core/base/events.ts: the typed emitter. A listener that throws or rejects is logged and changes
 * nothing; the other listeners still run.
 */
import { expect } from 'chai';
import { events, TaskEventEmitter, type TaskEvents } from '../../core/base/events.js';
import { getLogger, setLogger, type Logger } from '../../core/base/log.js';
import { ValidationError } from '../../core/errors.js';
import { recordingLogger } from '../helpers/log.js';

const created: TaskEvents['task:created'] = { id: '1', name: 'mail.send', queue: null, priority: 0, attempt: 0, runAt: 0, outcome: 'created' };

describe('TaskEventEmitter', () => {
  let previous: Logger;
  let log: ReturnType<typeof recordingLogger>;
  let emitter: TaskEventEmitter;

  beforeEach(() => {
    previous = getLogger();
    log = recordingLogger();
    setLogger(log);
    emitter = new TaskEventEmitter();
  });
  afterEach(() => setLogger(previous));

  it('calls every listener of an event with the payload, in the order they were added', () => {
    const seen: string[] = [];
    emitter.on('task:created', (p) => void seen.push(`a:${p.id}`));
    emitter.on('task:created', (p) => void seen.push(`b:${p.outcome}`));
    emitter.on('task:started', () => void seen.push('other event'));
    emitter.emit('task:created', created);
    expect(seen).to.deep.equal(['a:1', 'b:created']);
  });

  it('does nothing for an event without listeners', () => {
    expect(() => emitter.emit('task:failed', { ...created, workerId: null, error: new Error('x') })).to.not.throw();
    expect(log.lines).to.deep.equal([]);
  });

  it('logs a listener that throws, and still runs the others', () => {
    const seen: string[] = [];
    emitter.on('task:created', () => void seen.push('before'));
    emitter.on('task:created', () => {
      throw new Error('listener broke');
    });
    emitter.on('task:created', () => void seen.push('after'));
    expect(() => emitter.emit('task:created', created)).to.not.throw();
    expect(seen).to.deep.equal(['before', 'after']);
    const errors = log.find('error', /task:created listener threw/);
    expect(errors).to.have.length(1);
    expect(String(errors[0]!.fields.error)).to.contain('listener broke');
  });

  it('logs a listener that throws something that is not an Error', () => {
    emitter.on('task:created', () => {
      throw 'a string';
    });
    emitter.emit('task:created', created);
    expect(log.find('error', /task:created listener threw/)[0]!.fields.error).to.equal('a string');
  });

  it('logs a listener whose promise rejects, and still runs the others', async () => {
    let loggedResolve!: () => void;
    const logged = new Promise<void>((resolve) => (loggedResolve = resolve));
    setLogger({
      ...log,
      error(msg, fields) {
        log.error(msg, fields);
        loggedResolve();
      },
    });
    const seen: string[] = [];
    emitter.on('task:succeeded', async () => {
      throw new Error('async listener broke');
    });
    emitter.on('task:succeeded', () => void seen.push('ran'));
    emitter.emit('task:succeeded', { ...created, workerId: 'w', returnValue: 5, durationMs: 3 });
    expect(seen).to.deep.equal(['ran']);
    await logged;
    const errors = log.find('error', /task:succeeded listener threw/);
    expect(errors).to.have.length(1);
    expect(String(errors[0]!.fields.error)).to.contain('async listener broke');
  });

  it('runs a once listener only once', () => {
    let calls = 0;
    emitter.once('task:created', () => void calls++);
    emitter.emit('task:created', created);
    emitter.emit('task:created', created);
    expect(calls).to.equal(1);
    expect(emitter.listenerCount('task:created')).to.equal(0);
  });

  it('removes a listener with off() and with the function on() returns', () => {
    let a = 0;
    let b = 0;
    const la = () => void a++;
    emitter.on('task:created', la);
    const offB = emitter.on('task:created', () => void b++);
    emitter.emit('task:created', created);
    emitter.off('task:created', la);
    offB();
    emitter.emit('task:created', created);
    expect([a, b]).to.deep.equal([1, 1]);
    expect(emitter.listenerCount('task:created')).to.equal(0);
  });

  it('removes a once listener before it fires, with the function once() returns', () => {
    let calls = 0;
    const off = emitter.once('task:created', () => void calls++);
    off();
    emitter.emit('task:created', created);
    expect(calls).to.equal(0);
  });

  it('removes a once listener before it fires, with off() and the listener', () => {
    let calls = 0;
    const listener = () => void calls++;
    emitter.once('task:created', listener);
    emitter.off('task:created', listener);
    emitter.emit('task:created', created);
    expect(calls).to.equal(0);
  });

  it('removes only the once listener of the event named in off(), when one listener is on two events', () => {
    const seen: string[] = [];
    const listener = (p: { id: string }) => void seen.push(p.id);
    emitter.once('task:created', listener);
    emitter.once('task:started', listener);
    emitter.off('task:created', listener);
    emitter.emit('task:created', { ...created, id: 'created' });
    emitter.emit('task:started', { ...created, id: 'started', workerId: 'w' });
    expect(seen).to.deep.equal(['started']);
  });

  it('removes every listener with removeAllListeners()', () => {
    emitter.on('task:created', () => {});
    emitter.on('task:failed', () => {});
    emitter.removeAllListeners();
    expect(emitter.listenerCount('task:created') + emitter.listenerCount('task:failed')).to.equal(0);
  });

  it('refuses an unknown event name, naming it and the known ones (a listener on a typo waited for ever)', () => {
    const names = 'task:created, task:started, task:succeeded, task:error, task:rescheduled, task:failed, task:snoozed, task:finished';
    const bogus = 'task:bogus' as 'task:failed';
    expect(() => emitter.on(bogus, () => {})).to.throw(ValidationError, `Unknown event "task:bogus" in events.on() — expected one of: ${names}`);
    expect(() => emitter.once(bogus, () => {})).to.throw(ValidationError, /^Unknown event "task:bogus" in events\.once\(\)/);
    expect(() => emitter.off(bogus, () => {})).to.throw(ValidationError, /^Unknown event "task:bogus" in events\.off\(\)/);
    // listenerCount is not checked (it runs per task): an unknown name has no listener.
    expect(emitter.listenerCount(bogus)).to.equal(0);
    expect(() => emitter.on(undefined as never, () => {})).to.throw(ValidationError, /^Unknown event undefined in events\.on\(\)/);
  });

  it('refuses a listener that is not a function, naming the event', () => {
    expect(() => emitter.on('task:failed', 5 as never)).to.throw(ValidationError, 'Invalid listener in events.on("task:failed"): 5 — expected a function');
    expect(() => emitter.once('task:failed', {} as never)).to.throw(ValidationError, 'Invalid listener in events.once("task:failed"): an object — expected a function');
    expect(() => emitter.off('task:failed', 'x' as never)).to.throw(ValidationError, 'Invalid listener in events.off("task:failed"): "x" — expected a function');
    expect(emitter.listenerCount('task:failed')).to.equal(0);
  });

  it('exports one process-wide emitter', async () => {
    expect(events).to.be.instanceOf(TaskEventEmitter);
    const again = await import('../../core/base/events.js');
    expect(again.events).to.equal(events);
  });
});
