/**
 * core/dashboard/html.ts and format.ts: every interpolated value is escaped, markup passes only
 * as SafeHtml, and values are written as the CLI writes them (UTC, "2 min 5 s", `-` for no queue).
 */
import { expect } from 'chai';
import { escapeHtml, html, join, SafeHtml } from '../../core/dashboard/html.js';
import { count, duration, isoTime, prettyJson, queueLabel, relative, truncate } from '../../core/dashboard/format.js';
import { niceCeiling, throughputChart } from '../../core/dashboard/chart.js';

describe('dashboard html', () => {
  it('escapes the five characters that matter in text and quoted attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).to.equal('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('escapes interpolated strings and numbers but keeps the literal markup', () => {
    const name = '<script>alert(1)</script>';
    const out = html`<td title="${name}">${name} ${42}</td>`.value;
    expect(out).to.equal('<td title="&lt;script&gt;alert(1)&lt;/script&gt;">&lt;script&gt;alert(1)&lt;/script&gt; 42</td>');
  });

  it('inserts SafeHtml as it is, flattens arrays, and drops null, undefined and false', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`${inner}${[html`<br>`, '<x>']}${null}${undefined}${false}`.value).to.equal('<b>&lt;i&gt;</b><br>&lt;x&gt;');
    expect(join(['<a>', new SafeHtml('<b>')], ', ').value).to.equal('&lt;a&gt;, <b>');
  });
});

describe('dashboard formats', () => {
  it('writes times in UTC whatever the process time zone', () => {
    // The suite runs under TZ=Pacific/Chatham (+13:45 in January): a local format would show it.
    expect(isoTime(new Date(Date.UTC(2030, 0, 2, 3, 4, 5)))).to.equal('2030-01-02T03:04:05.000Z');
    expect(isoTime(null)).to.equal('—');
  });

  it('writes durations as the CLI does', () => {
    expect(duration(4.24)).to.equal('4.2 s');
    expect(duration(45)).to.equal('45 s');
    expect(duration(125)).to.equal('2 min 5 s');
    expect(duration(3605)).to.equal('1 h');
    expect(duration(3 * 3600 + 600)).to.equal('3 h 10 min');
    expect(duration(2 * 86400 + 4 * 3600 + 7)).to.equal('2 d 4 h');
  });

  it('writes relative times both ways', () => {
    const now = Date.UTC(2030, 0, 1);
    expect(relative(new Date(now - 125_000), now)).to.equal('2 min 5 s ago');
    expect(relative(new Date(now + 60_000), now)).to.equal('in 1 min');
    expect(relative(new Date(now), now)).to.equal('now');
  });

  it('groups thousands, labels no queue with -, shortens and pretty-prints', () => {
    expect(count(1234567)).to.equal('1,234,567');
    expect(count(12)).to.equal('12');
    expect(queueLabel(null)).to.equal('-');
    expect(truncate('abcdef', 4)).to.equal('abc…');
    expect(prettyJson('{"a":[1]}')).to.equal('{\n  "a": [\n    1\n  ]\n}');
    expect(prettyJson('not json {')).to.equal('not json {');
  });
});

describe('dashboard throughput chart', () => {
  const minute = (i: number, ok: number, bad: number) => ({ minute: new Date(Date.UTC(2030, 0, 2, 3, i)), succeeded: ok, failed: bad });

  it('rounds the axis up to 1, 2 or 5 times a power of ten', () => {
    expect([0, 1, 3, 7, 10, 11, 180, 501].map(niceCeiling)).to.deep.equal([1, 1, 5, 10, 10, 20, 200, 1000]);
  });

  it('draws one bar group per minute, stacked, with totals in its label and no inline style', () => {
    const svg = throughputChart([minute(0, 3, 1), minute(1, 0, 0), minute(2, 5, 0)]).value;
    expect(svg).to.contain('aria-label="Tasks finished per minute, last hour: 8 succeeded, 1 failed"');
    expect(svg.match(/<g>/g)).to.have.length(3);
    expect(svg.match(/class="ok"/g)).to.have.length(2);
    expect(svg.match(/class="bad"/g)).to.have.length(1);
    expect(svg).to.contain('<title>03:00 UTC: 3 succeeded, 1 failed</title>');
    expect(svg).not.to.match(/style=/);
  });

  it('draws an empty hour without dividing by zero', () => {
    const svg = throughputChart(Array.from({ length: 60 }, (_, i) => minute(i, 0, 0))).value;
    expect(svg).not.to.contain('NaN');
    expect(svg).not.to.contain('Infinity');
  });
});
