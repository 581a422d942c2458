/**
 * HTML built by a tagged template that escapes every interpolated value, so text from the queue
 * (task names, queues, arguments, results, errors, worker ids) can only ever render as text.
 * Markup is written in the templates themselves; `SafeHtml` marks what is already markup.
 */

/** A piece of markup that is already safe to insert as it is. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue = SafeHtml | string | number | null | undefined | false | readonly HtmlValue[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes for both text and (quoted) attribute positions: the templates always quote attributes,
 * so escaping the quote characters as well makes one function right for both.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** `html\`<td>${name}</td>\``: the literal parts are markup, every value is escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Joins pieces (escaping strings) with a separator that is markup. */
export function join(values: readonly HtmlValue[], separator: string): SafeHtml {
  return new SafeHtml(values.map(render).join(separator));
}
