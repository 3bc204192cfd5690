#!/usr/bin/env node
import { main } from './cli/main.ts';

/** Exits once stdout and stderr have taken everything written to them. */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

// Exit explicitly once done: the gateway's log is flushed and its store closed by then, and a
// keep-alive timer left in a dependency must not hold a stopped gateway (or a finished command) open.
main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  io: { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
}).then(exit, (error: unknown) => {
  process.stderr.write(`allowgate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  exit(1);
});
