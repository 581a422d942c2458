/**
 * The static assets by file name, with a content hash for their URLs: pages link
 * `style.css?v=<hash>`, so browsers may cache them for long and still get a new version at once.
 */
import { createHash } from 'node:crypto';
import { LIVE_JS } from './live.js';
import { STYLE_CSS } from './style.js';

export interface Asset {
  body: string;
  contentType: string;
  hash: string;
}

const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2457c5"/>' +
  '<path d="M4 11h2V7H4zm3 0h2V4H7zm3 0h2V8h-2z" fill="#fff"/></svg>';

function asset(body: string, contentType: string): Asset {
  return { body, contentType, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) };
}

export const ASSETS: Readonly<Record<string, Asset>> = {
  'style.css': asset(STYLE_CSS, 'text/css; charset=utf-8'),
  'live.js': asset(LIVE_JS, 'text/javascript; charset=utf-8'),
  'favicon.svg': asset(FAVICON_SVG, 'image/svg+xml'),
};
