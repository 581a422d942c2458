/**
 * The page shell and the small pieces every page shares: the view a renderer gets (base path,
 * read-only, CSRF token, now), links under the base path, status badges, the CSRF field, the
 * flash message. A page is a heading, an optional part above the live region (filters), and the
 * live region itself: the part the script refreshes, and all that a `?fragment=1` request returns.
 */
import { ASSETS } from './assets/index.js';
import { html, type SafeHtml } from './html.js';
import type { SourceInfo } from './source.js';
import type { Status } from '../types.js';

/** What a page renderer knows of the request. */
export interface View {
  /** The base path without a trailing slash ('' at the root). */
  base: string;
  title: string;
  readOnly: boolean;
  /** The token action forms carry; null in read-only mode. */
  csrfToken: string | null;
  nowMs: number;
  refreshMs: number;
  source: SourceInfo;
}

export interface FlashMessage {
  kind: 'ok' | 'error';
  text: string;
  lines: string[];
}

export type NavKey = 'overview' | 'tasks' | 'failed' | 'schedules' | 'workers' | 'none';

export interface PageParts {
  heading: string;
  nav: NavKey;
  /** Above the live region, never swapped (filter forms: the user may be typing there). */
  top?: SafeHtml;
  live: SafeHtml;
  /** Below the live region, never swapped. */
  bottom?: SafeHtml;
  /** No live refresh (a confirmation must not change under the user's cursor). */
  still?: boolean;
}

/** A link under the base path; `path` starts with '/'. */
export function href(view: Pick<View, 'base'>, path: string, params?: URLSearchParams): string {
  const q = params?.toString();
  return `${view.base}${path}${q ? `?${q}` : ''}`;
}

export function taskHref(view: Pick<View, 'base'>, id: string): string {
  return href(view, `/tasks/${encodeURIComponent(id)}`);
}

export function statusBadge(status: Status): SafeHtml {
  const word = status.toLowerCase();
  return html`<span class="status status-${word}">${word}</span>`;
}

export function csrfField(view: View): SafeHtml {
  return view.csrfToken ? html`<input type="hidden" name="csrf" value="${view.csrfToken}">` : html``;
}

export function flashBox(flash: FlashMessage | null): SafeHtml {
  if (!flash) return html``;
  return html`<div class="flash ${flash.kind}" role="status"><strong>${flash.text}</strong>${
    flash.lines.length ? html`<ul>${flash.lines.map((l) => html`<li>${l}</li>`)}</ul>` : ''
  }</div>`;
}

export function errorBox(message: string | null): SafeHtml {
  return message ? html`<div class="error-box" role="alert">${message}</div>` : html``;
}

const NAV: Array<[Exclude<NavKey, 'none'>, string, string]> = [
  ['overview', '/', 'Overview'],
  ['tasks', '/tasks', 'Tasks'],
  ['failed', '/failed', 'Failed'],
  ['schedules', '/schedules', 'Schedules'],
  ['workers', '/workers', 'Workers'],
];

const assetHref = (view: View, name: string): string => href(view, `/assets/${name}`, new URLSearchParams({ v: ASSETS[name].hash }));

export function renderPage(view: View, parts: PageParts, extra: { flash?: FlashMessage | null; error?: string | null } = {}): string {
  const nav = NAV.map(
    ([key, path, label]) => html`<a href="${href(view, path)}"${key === parts.nav ? html` class="current" aria-current="page"` : ''}>${label}</a>`,
  );
  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${parts.heading} · ${view.title}</title>
<link rel="stylesheet" href="${assetHref(view, 'style.css')}">
<link rel="icon" href="${assetHref(view, 'favicon.svg')}" type="image/svg+xml">
<script src="${assetHref(view, 'live.js')}" defer></script>
</head>
<body data-refresh-ms="${view.refreshMs}">
<header class="top">
<a class="brand" href="${href(view, '/')}">${view.title}</a>
<nav class="main">${nav}</nav>
<label class="live-toggle"><input type="checkbox" id="live-toggle" checked> Live <span class="refresh-state" data-refresh-state></span></label>
</header>
<main>
<h1>${parts.heading}</h1>
${flashBox(extra.flash ?? null)}${errorBox(extra.error ?? null)}${parts.top ?? ''}
${parts.still ? html`<div>${parts.live}</div>` : html`<div id="live" data-live>${parts.live}</div>`}
${parts.bottom ?? ''}
</main>
<footer>${view.source.database}${view.source.version ? html` · bgtasks ${view.source.version}` : ''}${view.readOnly ? ' · read-only' : ''} · times in UTC</footer>
</body>
</html>
`;
  return doc.value;
}
