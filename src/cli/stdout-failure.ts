// What a failed write to stdout does. The CLI's entry (index.ts) ends a short command at once: its
// reader went away (`maos … | head`). A long-running command may take the failures over while it
// runs: `maos serve`, whose log is stdout, then stops gracefully on EPIPE instead of exiting on the
// spot, and serves on when its log file's disk is full.

/** Receives the errors of stdout (EPIPE, a full disk) in place of the entry's exit. */
export type StdoutFailureHandler = (error: NodeJS.ErrnoException) => void;

let current: StdoutFailureHandler | undefined;

/** Makes `handler` receive stdout's failures until the returned function is called. */
export function takeOverStdoutFailures(handler: StdoutFailureHandler): () => void {
  current = handler;
  return () => {
    if (current === handler) current = undefined;
  };
}

/** The handler that took stdout's failures over, if one has. */
export function stdoutFailureHandler(): StdoutFailureHandler | undefined {
  return current;
}
