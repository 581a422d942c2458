/** A logger that records lines for assertions. */
import type { Logger } from '../../core/base/log.js';

export interface Line {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): Logger & { lines: Line[]; find(level: Line['level'], pattern: RegExp): Line[] } {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (msg: string, fields: Record<string, unknown> = {}) => {
    lines.push({ level, msg, fields });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    find: (level, pattern) => lines.filter((l) => l.level === level && pattern.test(l.msg)),
  };
}
