/**
 * The registry's name rules: a taken name refuses a different function (naming both places),
 * accepts the same source text imported twice, and an anonymous function needs a name option.
 */
import { expect } from 'chai';
import { background, ValidationError } from '../../core/index.js';
import { getRegistered, unregister } from '../../core/definition/registry.js';

describe('registry name rules', () => {
  const names = ['gaps.taken', 'gaps.same', 'gaps.anonNamed'];
  after(() => names.forEach((n) => unregister(n)));

  it('refuses a different function under a taken name with a ValidationError naming the name and both places', () => {
    background({ name: 'gaps.taken' }, function firstOwner() {
      return 1;
    });
    let error: unknown;
    try {
      background({ name: 'gaps.taken' }, function secondOwner() {
        return 2;
      });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ValidationError);
    const message = (error as Error).message;
    expect(message).to.match(/^Task name "gaps\.taken" is already registered by function firstOwner \(.*\); cannot register function secondOwner \(.*\) under the same name/);
    expect(message.match(/registry\.test\.ts:\d+:\d+/g)).to.have.length(2);
    // The first registration stands.
    expect(getRegistered('gaps.taken')!.fn.name).to.equal('firstOwner');
  });

  it('accepts a second function with identical source text under the same name (the same file imported twice)', () => {
    const fromFirstImport = function same(n: number) {
      return n + 1;
    };
    const fromSecondImport = function same(n: number) {
      return n + 1;
    };
    expect(fromFirstImport).not.to.equal(fromSecondImport);
    expect(fromFirstImport.toString()).to.equal(fromSecondImport.toString());
    background({ name: 'gaps.same' }, fromFirstImport);
    const again = background({ name: 'gaps.same' }, fromSecondImport);
    expect(again.name).to.equal('gaps.same');
    expect(getRegistered('gaps.same')!.fn).to.equal(fromSecondImport);
  });

  it('refuses an anonymous function without a name option, and accepts it with one', () => {
    expect(() => background(() => 1)).to.throw(ValidationError, /an anonymous function needs a name — pass \{ name: "…" \}/);
    expect(() =>
      background({ queue: 'q' }, function () {
        return 1;
      }),
    ).to.throw(ValidationError, /an anonymous function needs a name/);
    expect(background({ name: 'gaps.anonNamed' }, () => 1).name).to.equal('gaps.anonNamed');
  });
});
