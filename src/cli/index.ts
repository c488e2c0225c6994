// Entry point of the `maos` command (bin/maos.js imports this module): runs the CLI on
// process.argv and exits with its code.
import { readClientEnv } from '../config/client-env.ts';
import { EXIT } from './exit-codes.ts';
import { runCli } from './program.ts';
import { stdoutFailureHandler } from './stdout-failure.ts';

// `maos … | head` closes stdout early: that is not an error worth a stack trace. Another failure to
// write stdout (a full disk under `maos audit export > file`) ends the command as a system error
// (exit 7) in one line, not with a stack trace and exit 1, which scripts read as a failed session.
// `maos serve` takes these failures over from its start on (stdout-failure.ts).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  const handler = stdoutFailureHandler();
  if (handler) {
    handler(error);
    return;
  }
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.stderr.write(`error INTERNAL: cannot write to stdout (${error.code ?? error.message})\n`);
  process.exit(EXIT.SERVER);
});
// stderr holds only notes and error messages: one that cannot be written (`maos … 2>&1 | head -1`,
// a closed terminal) is lost, and the command ends with its own exit status. Unheard, the write
// error ended it as an uncaught exception with exit 1, which scripts read as a failed session.
process.stderr.on('error', () => {});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: readClientEnv(),
});
// exitCode, not process.exit(): long-running commands (serve) keep the process alive themselves,
// and pending stdout writes are flushed before Node exits.
process.exitCode = code;
