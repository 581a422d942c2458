/** The operations commands' pure helpers: formatting, the TTY-only progress line, flag parsing. */
import { expect } from 'chai';
import { duration, iso, oneLine, Progress, table, truncate, unreadableLabel } from '../../cli/format.js';
import { numberFlag, parseCreator, parseIds, parseList, parseSince, parseStates } from '../../cli/flags.js';
import { decimal } from '../../core/config/settings-spec.js';
import { parseArgsFlag } from '../../cli/commands/enqueue.js';

function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { isTTY, text: '', write(chunk: string) { s.text += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('cli/format', () => {
  it('writes durations in words with at most two units', () => {
    expect(duration(0.012)).to.equal('12 ms');
    expect(duration(0.42)).to.equal('420 ms');
    expect(duration(0.9996)).to.equal('1 s');
    expect(duration(4.24)).to.equal('4.2 s');
    expect(duration(42.4)).to.equal('42 s');
    expect(duration(185)).to.equal('3 min 5 s');
    expect(duration(7200)).to.equal('2 h');
    expect(duration(7325)).to.equal('2 h 2 min');
    expect(duration(3 * 86400 + 4 * 3600 + 7)).to.equal('3 d 4 h');
  });

  it('writes times as ISO 8601 in UTC whatever the time zone, and - for none', () => {
    expect(iso(Date.UTC(2030, 0, 2, 3, 4, 5))).to.equal('2030-01-02T03:04:05.000Z');
    expect(iso(new Date(Date.UTC(2030, 0, 2)))).to.equal('2030-01-02T00:00:00.000Z');
    expect(iso(null)).to.equal('-');
  });

  it('aligns table columns, right-aligning numeric ones', () => {
    expect(table(['NAME', 'N'], [['a', '5'], ['long name', '123']], [1])).to.equal('NAME         N\na            5\nlong name  123');
    expect(truncate('abcdef', 4)).to.equal('abc…');
  });

  it('writes control characters as escapes, so a stored text stays on one line', () => {
    expect(oneLine('a\nb\tc\r\u001b[31md\u007f é')).to.equal('a\\nb\\tc\\r\\u001b[31md\\u007f é');
  });

  it('marks a text that cannot be read back with its reason (and the parser\'s message when asked)', () => {
    const u = { text: '{bad\n', reason: 'not valid JSON', parseError: 'Unexpected token' };
    expect(unreadableLabel(u)).to.equal('(not valid JSON) {bad\\n');
    expect(unreadableLabel(u, true)).to.equal('(not valid JSON: Unexpected token) {bad\\n');
    expect(unreadableLabel({ ...u, parseError: null }, true)).to.equal('(not valid JSON) {bad\\n');
  });

  it('draws progress only on a terminal, and clears it at the end', () => {
    const tty = fakeStream(true);
    const p = new Progress('Deleting:', 20_000, tty);
    p.update(500);
    p.update(20_000);
    p.finish();
    expect(tty.text).to.match(/^\rDeleting: 500 \/ 20,000 \(2%\)/);
    const ESC = String.fromCharCode(27);
    expect(tty.text.endsWith(`\rDeleting: 20,000 / 20,000 (100%)${ESC}[K\r${ESC}[K`)).to.equal(true);
    const pipe = fakeStream(false);
    const q = new Progress('Deleting:', 20_000, pipe);
    q.update(500);
    q.finish();
    expect(pipe.text).to.equal('');
  });
});

describe('cli/flags parsing', () => {
  it('reads numbers in decimal only: 0x10, 0b1 and 0o7 are refused, as task ids are', () => {
    for (const [text, n] of [['4', 4], [' 4 ', 4], ['-2', -2], ['1.5', 1.5], ['.5', 0.5], ['1e3', 1000], ['+3', 3]] as const) expect(decimal(text), text).to.equal(n);
    for (const text of ['0x10', '0b1', '0o7', '', ' ', 'Infinity', '1_000', '1.2.3', '5s']) expect(Number.isNaN(decimal(text)), text).to.equal(true);
    expect(() => numberFlag('0x7', '--priority', 'an integer', Number.isInteger)).to.throw(/^Invalid --priority: "0x7" — expected an integer$/);
    expect(numberFlag('7', '--priority', 'an integer', Number.isInteger)).to.equal(7);
  });

  it('parses ids (checked, de-duplicated) and refuses bad ones', () => {
    expect(parseIds(['4', '2', '4'])).to.deep.equal(['4', '2']);
    expect(thrown(() => parseIds(['4', 'x'])).message).to.match(/Invalid task id "x"/);
    expect(thrown(() => parseIds([])).message).to.match(/Missing task id/);
  });

  it('parses lists, states (lower case) and creators', () => {
    expect(parseList('a, b,a', '--queue')).to.deep.equal(['a', 'b']);
    expect(parseList(undefined, '--queue')).to.equal(null);
    expect(thrown(() => parseList('a,,b', '--queue')).message).to.match(/Invalid --queue: "a,,b"/);
    expect(parseStates('ready,failed')).to.deep.equal(['READY', 'FAILED']);
    expect(thrown(() => parseStates('pending')).message).to.match(/expected ready, running, successful, failed/);
    expect(parseCreator('user:42')).to.deep.equal({ type: 'user', id: '42' });
    expect(parseCreator('app.User:a:b')).to.deep.equal({ type: 'app.User', id: 'a:b' });
    expect(thrown(() => parseCreator(':42')).message).to.match(/expected type:id/);
  });

  it('reads --since as seconds before now or an ISO time (UTC when no zone is given)', () => {
    const now = Date.UTC(2030, 5, 1, 12);
    expect(parseSince('3600', now)).to.equal(now - 3_600_000);
    expect(parseSince('0.5', now)).to.equal(now - 500);
    expect(parseSince('2030-01-01', now)).to.equal(Date.UTC(2030, 0, 1));
    expect(parseSince('2030-01-01T06:30:00', now)).to.equal(Date.UTC(2030, 0, 1, 6, 30));
    expect(parseSince('2030-01-01T06:30:00+02:00', now)).to.equal(Date.UTC(2030, 0, 1, 4, 30));
    expect(parseSince(undefined, now)).to.equal(null);
    for (const bad of ['-5', 'yesterday', '2030-13-45', '']) expect(thrown(() => parseSince(bad, now)).message).to.match(/Invalid --since/);
  });

  it('reads --args as a JSON array only', () => {
    expect(parseArgsFlag(undefined)).to.deep.equal([]);
    expect(parseArgsFlag('[1, "a", {"b": null}]')).to.deep.equal([1, 'a', { b: null }]);
    expect(thrown(() => parseArgsFlag('[1,')).message).to.match(/^Invalid --args: .* — expected a JSON array/);
    expect(thrown(() => parseArgsFlag('"a"')).message).to.match(/is not a JSON array/);
  });
});
