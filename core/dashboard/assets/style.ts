/**
 * The dashboard's one stylesheet, shipped as a string so `tsc` puts it in dist and the package
 * serves it itself (no CDN, works offline). Served from `<base>/assets/style.css`; the strict CSP
 * (`style-src 'self'`) forbids inline styles, so every look is a class here.
 */
export const STYLE_CSS = `
:root {
  --bg: #f7f7f8; --fg: #1d1f24; --muted: #667085; --line: #d9dce1; --card: #fff;
  --accent: #2457c5; --ok: #1f8a4c; --bad: #c2362b; --warn: #a86400; --run: #6b3fc4;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #15171b; --fg: #e6e7ea; --muted: #9aa2b1; --line: #30343c; --card: #1d2026;
    --accent: #7ea3ff; --ok: #4cc38a; --bad: #ff6b5e; --warn: #f0a742; --run: #b69cff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.25rem;
  padding: .6rem 1rem; background: var(--card); border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
nav.main { display: flex; flex-wrap: wrap; gap: .25rem .9rem; }
nav.main a { text-decoration: none; padding: .15rem 0; }
nav.main a.current { font-weight: 600; border-bottom: 2px solid var(--accent); }
.live-toggle { margin-left: auto; font-size: .85rem; color: var(--muted); }
main { padding: 1rem; max-width: 1400px; margin: 0 auto; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .6rem; }
footer { padding: 1rem; color: var(--muted); font-size: .8rem; text-align: center; }
.muted { color: var(--muted); }
.mono, pre, code { font-family: var(--mono); font-size: .85rem; }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem;
  overflow: auto; max-height: 28rem; white-space: pre-wrap; word-break: break-word; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(10.5rem, 1fr)); gap: .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .7rem .9rem; }
.card .label { color: var(--muted); font-size: .8rem; }
.card .value { font-size: 1.6rem; font-weight: 650; }
.card a { text-decoration: none; color: inherit; }
.table-wrap { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; color: var(--muted); font-weight: 600; white-space: nowrap; }
tr:last-child td { border-bottom: none; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.args { font-family: var(--mono); font-size: .8rem; max-width: 28rem; word-break: break-all; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .78rem;
  font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.status-ready { color: var(--accent); } .status-running { color: var(--run); }
.status-successful { color: var(--ok); } .status-failed { color: var(--bad); }
.flash { border-radius: 8px; padding: .6rem .9rem; margin-bottom: 1rem; border: 1px solid var(--line); background: var(--card); }
.flash.ok { border-color: var(--ok); } .flash.error { border-color: var(--bad); }
.flash ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.error-box { border: 1px solid var(--bad); color: var(--bad); background: var(--card); border-radius: 8px;
  padding: .6rem .9rem; margin-bottom: 1rem; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .6rem .9rem;
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem; margin-bottom: 1rem; }
details.filter-box { margin: 0 0 1rem; padding: .4rem .8rem; }
details.filter-box form.filters { border: none; padding: .6rem 0 .2rem; margin: 0; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: .2rem; }
form.filters fieldset { border: none; margin: 0; padding: 0; font-size: .85rem; }
form.filters fieldset label { flex-direction: row; align-items: center; gap: .3rem; display: inline-flex;
  margin-right: .6rem; color: var(--fg); }
form.filters .buttons { display: flex; align-items: end; gap: .6rem; }
input, select, button { font: inherit; }
input[type=text], input[type=search], input[type=datetime-local], select {
  padding: .3rem .4rem; border: 1px solid var(--line); border-radius: 5px; background: var(--bg); color: var(--fg); min-width: 0; }
button, .button { display: inline-block; padding: .3rem .75rem; border-radius: 5px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; font-size: .9rem; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); }
button.danger, .button.danger { background: var(--bad); border-color: var(--bad); }
.actions-bar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .6rem 0; }
.actions-bar .label { color: var(--muted); font-size: .85rem; }
form.inline { display: inline; }
.pager { display: flex; gap: .8rem; margin: .7rem 0; align-items: center; flex-wrap: wrap; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; padding: .8rem; margin: 0; }
dl.fields dt { color: var(--muted); } dl.fields dd { margin: 0; word-break: break-word; }
details { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .7rem; margin: .4rem 0; }
details summary { cursor: pointer; }
svg.chart { width: 100%; height: auto; max-height: 220px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
svg.chart .ok { fill: var(--ok); } svg.chart .bad { fill: var(--bad); }
svg.chart .axis { stroke: var(--line); } svg.chart text { fill: var(--muted); font-size: 11px; font-family: system-ui, sans-serif; }
.legend { display: flex; gap: 1rem; font-size: .85rem; color: var(--muted); margin: .3rem 0; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; vertical-align: -1px; margin-right: .3rem; }
.swatch.ok { background: var(--ok); } .swatch.bad { background: var(--bad); }
.refresh-state { font-size: .8rem; color: var(--muted); }
.refresh-state.failing { color: var(--bad); }
@media (max-width: 720px) {
  body { font-size: 14px; }
  main { padding: .6rem; }
  .hide-narrow { display: none; }
  dl.fields { grid-template-columns: 1fr; } dl.fields dt { margin-top: .4rem; }
  .card .value { font-size: 1.3rem; }
  .live-toggle { margin-left: 0; }
  form.filters { grid-template-columns: 1fr 1fr; gap: .5rem .6rem; }
  form.filters fieldset, form.filters .buttons { grid-column: 1 / -1; }
}
`;
