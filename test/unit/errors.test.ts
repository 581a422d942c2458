/**
 * core/errors.ts: the hierarchy, `formatError` (stack plus `Caused by:` chain, truncated),
 * `errorRecord`, and the brand checks that work across copies of the classes.
 */
import { expect } from 'chai';
import {
  BgtasksError,
  ConfigError,
  InvalidTaskError,
  PermanentTaskError,
  TaskTimeoutError,
  ValidationError,
  errorClassName,
  errorRecord,
  formatError,
  isErrorKind,
  isPermanent,
} from '../../core/errors.js';

type ErrorsModule = typeof import('../../core/errors.js');

describe('error classes', () => {
  it('set name to the class name, are Errors and BgtasksErrors, and chain causes', () => {
    const cause = new TypeError('inner');
    const err = new ConfigError('bad', { cause });
    expect(err).to.be.instanceOf(Error);
    expect(err).to.be.instanceOf(BgtasksError);
    expect(err.name).to.equal('ConfigError');
    expect(err.message).to.equal('bad');
    expect(err.cause).to.equal(cause);
  });

  it('carry their brands as non-enumerable Symbol.for properties', () => {
    const err = new PermanentTaskError('x');
    const symbols = Object.getOwnPropertySymbols(err);
    expect(symbols).to.have.members([Symbol.for('bgtasks.errorKind'), Symbol.for('bgtasks.permanent')]);
    for (const s of symbols) expect(Object.getOwnPropertyDescriptor(err, s)!.enumerable).to.equal(false);
  });

  it('InvalidTaskError is the reference name of PermanentTaskError', () => {
    expect(InvalidTaskError).to.equal(PermanentTaskError);
    const err = new InvalidTaskError('no such user');
    expect(err).to.be.instanceOf(PermanentTaskError);
    expect(isPermanent(err)).to.equal(true);
  });
});

describe('isPermanent', () => {
  it('is true for PermanentTaskError and its subclasses', () => {
    class NoSuchUser extends PermanentTaskError {}
    expect(isPermanent(new PermanentTaskError('x'))).to.equal(true);
    const sub = new NoSuchUser('x');
    expect(isPermanent(sub)).to.equal(true);
    expect(sub.name).to.equal('NoSuchUser');
  });

  it('is false for other errors and for values that are not errors', () => {
    expect(isPermanent(new Error('x'))).to.equal(false);
    expect(isPermanent(new ValidationError('x'))).to.equal(false);
    expect(isPermanent(new TaskTimeoutError('x'))).to.equal(false);
    expect(isPermanent(null)).to.equal(false);
    expect(isPermanent(undefined)).to.equal(false);
    expect(isPermanent('PermanentTaskError')).to.equal(false);
    expect(isPermanent({ name: 'PermanentTaskError' })).to.equal(false);
  });

  it('recognises an error from another copy of the class by its Symbol.for brand', () => {
    const foreign = Object.assign(new Error('from another copy'), { [Symbol.for('bgtasks.permanent')]: true });
    expect(foreign).to.not.be.instanceOf(PermanentTaskError);
    expect(isPermanent(foreign)).to.equal(true);
    expect(isPermanent({ [Symbol.for('bgtasks.permanent')]: 'yes' })).to.equal(false);
  });

  it('recognises a PermanentTaskError from a second loaded copy of the module', async () => {
    const copy = (await import(new URL('../../core/errors.ts?second-copy', import.meta.url).href)) as ErrorsModule;
    expect(copy.PermanentTaskError).to.not.equal(PermanentTaskError);
    const err = new copy.PermanentTaskError('x');
    expect(err).to.not.be.instanceOf(PermanentTaskError);
    expect(isPermanent(err)).to.equal(true);
    expect(isErrorKind(err, 'PermanentTaskError')).to.equal(true);
    expect(copy.isPermanent(new PermanentTaskError('y'))).to.equal(true);
  });
});

describe('isErrorKind', () => {
  it('is true for the named bgtasks class only', () => {
    expect(isErrorKind(new ConfigError('x'), 'ConfigError')).to.equal(true);
    expect(isErrorKind(new ConfigError('x'), 'ValidationError')).to.equal(false);
    expect(isErrorKind(new TaskTimeoutError('x'), 'TaskTimeoutError')).to.equal(true);
  });

  it('is false for a look-alike that is not a bgtasks error', () => {
    class ConfigErrorLookAlike extends Error {
      override name = 'ConfigError';
    }
    expect(isErrorKind(new ConfigErrorLookAlike('x'), 'ConfigError')).to.equal(false);
    expect(isErrorKind(null, 'ConfigError')).to.equal(false);
    expect(isErrorKind('ConfigError', 'ConfigError')).to.equal(false);
  });

  it('recognises a copy of the class by its Symbol.for brand', () => {
    const foreign = Object.assign(new Error('x'), { [Symbol.for('bgtasks.errorKind')]: 'TaskTimeoutError' });
    expect(isErrorKind(foreign, 'TaskTimeoutError')).to.equal(true);
    expect(isErrorKind(foreign, 'CancelledError')).to.equal(false);
  });
});

describe('errorClassName', () => {
  it('uses the name, or the constructor name when the name is the generic "Error"', () => {
    class Unnamed extends Error {}
    expect(errorClassName(new TypeError('x'))).to.equal('TypeError');
    expect(errorClassName(new Error('x'))).to.equal('Error');
    expect(errorClassName(new Unnamed('x'))).to.equal('Unnamed');
    expect(errorClassName(new ValidationError('x'))).to.equal('ValidationError');
    expect(errorClassName('text')).to.equal('string');
    expect(errorClassName(null)).to.equal('null');
    expect(errorClassName({ a: 1 })).to.equal('object');
  });
});

describe('formatError', () => {
  it('is the stack of a lone error', () => {
    const err = new Error('boom');
    expect(formatError(err)).to.equal(err.stack);
  });

  it('appends each cause as "Caused by:" with its stack', () => {
    const root = new RangeError('root cause');
    const mid = new TypeError('middle', { cause: root });
    const top = new Error('top', { cause: mid });
    const text = formatError(top);
    expect(text).to.equal(`${top.stack}\nCaused by: ${mid.stack}\nCaused by: ${root.stack}`);
    expect(text.indexOf('Caused by: TypeError: middle')).to.be.lessThan(text.indexOf('Caused by: RangeError: root cause'));
  });

  it('shows causes that are not errors', () => {
    expect(formatError(new Error('a', { cause: 'plain text' }))).to.match(/\nCaused by: string: plain text$/);
    expect(formatError(new Error('a', { cause: { code: 42 } }))).to.match(/\nCaused by: object: \{"code":42\}$/);
  });

  it('describes thrown values that are not errors', () => {
    expect(formatError('boom')).to.equal('string: boom');
    expect(formatError({ reason: 'x' })).to.equal('object: {"reason":"x"}');
    expect(formatError(42)).to.equal('number: 42');
  });

  it('uses "Name: message" when an error has no stack', () => {
    const err = new TypeError('no stack');
    err.stack = '';
    expect(formatError(err)).to.equal('TypeError: no stack');
  });

  it('stops on a cause cycle after a bounded depth', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    const text = formatError(a);
    const causes = text.split('\n').filter((l) => l.startsWith('Caused by:'));
    expect(causes.length).to.be.greaterThan(0);
    expect(causes.length).to.be.lessThan(10);
  });

  it('truncates a very long text and says so', () => {
    const err = new Error('x'.repeat(20_000));
    const text = formatError(err);
    expect(text.endsWith('\n… (truncated)')).to.equal(true);
    expect(text.length).to.equal(16_000 + '\n… (truncated)'.length);
    expect(text.startsWith('Error: xxx')).to.equal(true);
  });

  it('does not truncate a short text', () => {
    expect(formatError(new Error('short'))).to.not.contain('(truncated)');
  });
});

describe('errorRecord', () => {
  it('records class, message, stack with causes, attempt, time and worker', () => {
    const err = new TypeError('bad input', { cause: new Error('deeper') });
    const rec = errorRecord(err, 3, 1_900_000_000_000, 'host:1:abcd');
    expect(rec).to.deep.equal({
      class: 'TypeError',
      message: 'bad input',
      stack: formatError(err),
      attempt: 3,
      at: 1_900_000_000_000,
      workerId: 'host:1:abcd',
    });
    expect(rec.stack).to.contain('Caused by: Error: deeper');
  });

  it('records bgtasks errors by their class name', () => {
    class NoSuchUser extends PermanentTaskError {}
    expect(errorRecord(new NoSuchUser('gone'), 1, 0, null)).to.include({ class: 'NoSuchUser', message: 'gone', workerId: null });
  });

  it('records thrown values that are not errors', () => {
    expect(errorRecord('just text', 1, 0, null)).to.include({ class: 'string', message: 'just text', stack: 'string: just text' });
    expect(errorRecord({ code: 7 }, 2, 5, 'w')).to.include({ class: 'object', message: '{"code":7}', attempt: 2, at: 5 });
  });
});
