/**
 * The throughput chart of the overview: tasks finished per minute over the last hour, succeeded
 * and failed stacked, drawn on the server as inline SVG. No chart library and no script: it is
 * redrawn with the live region, and colours come from the stylesheet (classes `ok`/`bad`), since
 * the CSP allows no inline styles.
 */
import { count } from './format.js';
import { html, type SafeHtml } from './html.js';
import type { ThroughputMinute } from './source.js';

const W = 720;
const H = 170;
const LEFT = 40;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 22;

/** The smallest of 1, 2, 5 × 10^k that is >= n, so the axis reads in round numbers. */
export function niceCeiling(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

const hhmm = (d: Date): string => d.toISOString().slice(11, 16);

export function throughputChart(minutes: readonly ThroughputMinute[]): SafeHtml {
  const succeeded = minutes.reduce((a, m) => a + m.succeeded, 0);
  const failed = minutes.reduce((a, m) => a + m.failed, 0);
  const label = `Tasks finished per minute, last hour: ${count(succeeded)} succeeded, ${count(failed)} failed`;
  const top = niceCeiling(Math.max(0, ...minutes.map((m) => m.succeeded + m.failed)));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const slot = plotW / Math.max(1, minutes.length);
  const barW = Math.max(1, slot - 1);
  const y = (v: number): number => TOP + plotH - (v / top) * plotH;
  const fmt = (v: number): string => (Math.round(v * 10) / 10).toString();

  const bars = minutes.map((m, i) => {
    const x = fmt(LEFT + i * slot);
    const okH = (m.succeeded / top) * plotH;
    const badH = (m.failed / top) * plotH;
    return html`<g><title>${hhmm(m.minute)} UTC: ${count(m.succeeded)} succeeded, ${count(m.failed)} failed</title>${
      m.succeeded > 0 ? html`<rect class="ok" x="${x}" y="${fmt(y(m.succeeded))}" width="${fmt(barW)}" height="${fmt(okH)}"/>` : ''
    }${m.failed > 0 ? html`<rect class="bad" x="${x}" y="${fmt(y(m.succeeded + m.failed))}" width="${fmt(barW)}" height="${fmt(badH)}"/>` : ''}</g>`;
  });

  const first = minutes[0];
  const last = minutes[minutes.length - 1];
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}" data-succeeded="${succeeded}" data-failed="${failed}">
<title>${label}</title>
<line class="axis" x1="${LEFT}" y1="${TOP + plotH}" x2="${W - RIGHT}" y2="${TOP + plotH}"/>
<line class="axis" x1="${LEFT}" y1="${TOP}" x2="${W - RIGHT}" y2="${TOP}"/>
<text x="${LEFT - 6}" y="${TOP + 4}" text-anchor="end">${count(top)}</text>
<text x="${LEFT - 6}" y="${TOP + plotH}" text-anchor="end">0</text>
${first ? html`<text x="${LEFT}" y="${H - 6}">${hhmm(first.minute)}</text>` : ''}
${last ? html`<text x="${W - RIGHT}" y="${H - 6}" text-anchor="end">${hhmm(last.minute)} UTC</text>` : ''}
${bars}
</svg>
<div class="legend"><span><span class="swatch ok"></span>succeeded ${count(succeeded)}</span><span><span class="swatch bad"></span>failed ${count(failed)}</span></div>`;
}
