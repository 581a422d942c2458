/** core/base/suggest.ts: the known name a misspelt setting or option most likely meant. */
import { expect } from 'chai';
import { closestName } from '../../core/base/suggest.js';

describe('closestName', () => {
  const settings = ['database', 'connections', 'maxAttempts', 'maxRunTime', 'lockTimeout', 'sleep', 'mode'];

  it('names the one known name within two edits (a swap counts as one)', () => {
    expect(closestName('databse', settings)).to.equal('database');
    expect(closestName('dtaabase', settings)).to.equal('database');
    expect(closestName('maxAttemps', settings)).to.equal('maxAttempts');
    expect(closestName('locktimeout', settings)).to.equal('lockTimeout');
  });

  it('names none when nothing is near, when two are as near, or for a name too short to guess from', () => {
    expect(closestName('tablePrefx', settings)).to.equal(null);
    expect(closestName('maxRun', settings)).to.equal(null);
    expect(closestName('sl', settings)).to.equal(null);
    expect(closestName('ab', ['ac', 'ad'])).to.equal(null);
    expect(closestName('database', settings)).to.equal(null);
  });
});
