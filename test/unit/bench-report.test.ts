/**
 * How the bench rewrites docs/benchmarks.md (bench/lib/report.ts mergeReport): the part a run
 * wrote replaces its old self; the side-by-side section, written by hand from peer-bench, is
 * always kept.
 */
import { expect } from 'chai';
import { mergeReport } from '../../bench/lib/report.js';

const MAIN = '# Benchmarks\n\nold main\n';
const PEERS = '## Side by side with peers (issue 19)\n\nratios\n';
const SOAKS = '## Soaks\n\nold soaks\n';

describe('bench report merge', () => {
  it('a main run replaces the main part and keeps the side-by-side and soak sections, in that order', () => {
    const page = mergeReport(`${MAIN}\n${PEERS}\n${SOAKS}`, '# Benchmarks\n\nnew main\n', null);
    expect(page).to.equal('# Benchmarks\n\nnew main\n\n## Side by side with peers (issue 19)\n\nratios\n\n## Soaks\n\nold soaks\n');
  });

  it('a soak run replaces the soak section and keeps the rest, also when the soaks came first on the old page', () => {
    const page = mergeReport(`${MAIN}\n${SOAKS}\n${PEERS}`, null, '## Soaks\n\nnew soaks\n');
    expect(page).to.equal('# Benchmarks\n\nold main\n\n## Side by side with peers (issue 19)\n\nratios\n\n## Soaks\n\nnew soaks\n');
  });

  it('a page without the optional sections gets only what was written', () => {
    expect(mergeReport(MAIN, '# Benchmarks\n\nnew\n', null)).to.equal('# Benchmarks\n\nnew\n');
    expect(mergeReport(null, null, null)).to.equal('# Benchmarks\n');
  });
});
