// Entry point of the `maos` command (bin/maos.js imports this module): runs the CLI on
// process.argv and exits with its code.
import { readClientEnv } from '../config/client-env.ts';
import { runCli } from './program.ts';

// `maos … | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: readClientEnv(),
});
// exitCode, not process.exit(): long-running commands (serve) keep the process alive themselves,
// and pending stdout writes are flushed before Node exits.
process.exitCode = code;
