/**
 * Loaded with `node --import <tsx loader> --import <this file> dist/cli/index.js …`: times every
 * statement of the spawned CLI and writes them as JSON to $BENCH_QUERY_LOG when the process
 * exits (the CLI ends with process.exit, which still runs 'exit' listeners).
 */
import { writeFileSync } from 'node:fs';
import { queryTimer } from './query-timer.js';

const out = process.env.BENCH_QUERY_LOG;
const timer = queryTimer();
timer.start();
process.on('exit', () => {
  if (out) writeFileSync(out, JSON.stringify(timer.stop()));
});
