// `maos run` at a plan waiting for approval (the first plan and each adaptive phase gate): shows
// what waits and how to decide, and, when interactive, asks on stdin (y = approve, n = reject with a
// reason, anything else or end of input = decide later).
import { createInterface, type Interface } from 'node:readline/promises';
import type { SessionDto, TaskDto } from '../http/dto.ts';
import type { CliContext } from './context.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { showControls } from './output.ts';
import { describeRetry, interruptedError, isTransient, retryWhileUnavailable } from './retry.ts';

export type ApprovalDecision = 'approved' | 'rejected' | 'later';

export interface ApprovalPrompter {
  /** Shows the waiting plan or phase; asks when interactive. `later` when nothing was decided here. */
  decide(session: SessionDto): Promise<ApprovalDecision>;
  /** Releases stdin (call once the command is done). */
  close(): void;
}

export interface ApprovalPrompterOptions {
  /** Ask on stdin; otherwise only print how to approve or reject. */
  interactive: boolean;
  input?: NodeJS.ReadableStream;
  /**
   * How long the approve or reject request of an answer is retried while the server is unavailable
   * (refused or reset, 502/503/504; retry.ts), so a typed answer is not lost to a restart. 0: the
   * first such failure ends the command. @defaultValue 0
   */
  retryForMs?: number;
}

/**
 * What waits for approval: the phase number (0 = the first plan), its name and its tasks. Every
 * pending task from that phase on waits for this one decision: at the first plan of a pipeline
 * that is the tasks of all its phases, at an adaptive phase gate those of the next phase.
 */
function describeWaiting(session: SessionDto): { phase: number; name: string; tasks: TaskDto[] } {
  const pending = session.tasks.filter((task) => task.status === 'pending').sort((a, b) => a.phase - b.phase);
  const phase =
    session.approval?.pendingPhase ?? pending.reduce((min, task) => Math.min(min, task.phase), Infinity);
  const number = Number.isFinite(phase) ? phase : 0;
  return {
    phase: number,
    name: showControls(session.plan?.phases[number]?.name ?? ''),
    tasks: pending.filter((task) => task.phase >= number),
  };
}

/** The lines listing planned tasks, under a heading per phase when they span several. */
export function describeTasks(session: SessionDto, tasks: TaskDto[]): string[] {
  const phases = [...new Set(tasks.map((task) => task.phase))];
  const lines: string[] = [];
  for (const phase of phases) {
    const indent = phases.length > 1 ? '    ' : '  ';
    if (phases.length > 1) {
      const name = session.plan?.phases[phase]?.name;
      lines.push(`  phase ${phase}${name ? ` (${showControls(name)})` : ''}:`);
    }
    for (const task of tasks.filter((candidate) => candidate.phase === phase)) {
      const after = task.dependsOn.length > 0 ? ` (after ${task.dependsOn.join(', ')})` : '';
      // Instructions and phase names come from a model or another user's edit: escapes, not sent.
      const instructions = showControls(task.instructions.split('\n')[0]?.slice(0, 120) ?? '');
      lines.push(`${indent}${task.name} [${task.role}]${after}: ${instructions}`);
    }
  }
  return lines;
}

/** Creates the prompter; one stdin reader serves every question of the command. */
export function createApprovalPrompter(ctx: CliContext, options: ApprovalPrompterOptions): ApprovalPrompter {
  const { out } = ctx;
  // In --json mode stdout carries only JSON: the explanation goes to stderr.
  const say = (text: string) => (out.json ? out.note(text) : out.line(text));
  const retryForMs = options.retryForMs ?? 0;
  let reader: Interface | undefined;
  let lines: AsyncIterator<string> | undefined;

  async function ask(question: string): Promise<string | null> {
    if (!lines) {
      reader = createInterface({ input: options.input ?? process.stdin, terminal: false });
      // The iterator buffers lines, so a piped "y\nn\n<reason>\n" answers several questions in turn;
      // end of input answers every later question with "decide later".
      lines = reader[Symbol.asyncIterator]();
    }
    say(question);
    // Ctrl-C while the question waits ends the command (exit 130) as it does while following:
    // the pending read alone would keep waiting for an answer and ignore it.
    const interrupt = ctx.interruptSignal();
    if (interrupt.aborted) throw interruptedError();
    let onAbort = () => {};
    const interrupted = new Promise<never>((_, reject) => {
      onAbort = () => reject(interruptedError());
      interrupt.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const next = await Promise.race([lines.next(), interrupted]);
      return next.done ? null : next.value;
    } finally {
      interrupt.removeEventListener('abort', onAbort);
    }
  }

  return {
    async decide(session) {
      const waiting = describeWaiting(session);
      const what =
        waiting.phase === 0 ? 'plan' : `phase ${waiting.phase}${waiting.name ? ` (${waiting.name})` : ''}`;
      say(
        waiting.phase === 0
          ? `session ${session.id} is waiting for plan approval; planned tasks:`
          : `session ${session.id} is waiting for approval of ${what}; planned tasks:`,
      );
      for (const line of describeTasks(session, waiting.tasks)) say(line);
      say(
        `approve: maos approve ${session.id} [--plan edited.json]   reject: maos reject ${session.id} --reason "…"`,
      );
      if (!options.interactive) return 'later';
      const answer = (
        await ask(
          `Approve this ${waiting.phase === 0 ? 'plan' : what}? [y]es / [n]o = reject / anything else = decide later`,
        )
      )
        ?.trim()
        .toLowerCase();
      // Retried attempts of this answer: a later INVALID_STATE may then be an earlier attempt's doing.
      let retried = false;
      const send = async <T>(call: () => Promise<T>): Promise<T> => {
        try {
          return await retryWhileUnavailable(call, {
            retryForMs,
            signal: ctx.interruptSignal(),
            onRetry: (retry, error, delayMs) => {
              retried = true;
              out.note(describeRetry(error, retry, delayMs, retryForMs));
            },
          });
        } catch (error) {
          // Given up (or a Retry-After past --retry-for): the command ends (never retried as a
          // dropped stream by the follower, which would go on past the question), and says that
          // the typed answer may be lost and how to decide now.
          if (!(error instanceof CliError) || error.exitCode === EXIT.INTERRUPTED) throw error;
          // Refused for good (403, 404, someone else decided): as it is.
          if (error.code === 'INVALID_STATE' || (!isTransient(error) && !retried)) throw error;
          throw new CliError(
            error.code,
            error.message,
            error.exitCode,
            [
              ...error.details,
              `the answer may not have been recorded: check with maos sessions show ${session.id}, then decide with maos approve ${session.id} / maos reject ${session.id} --reason "…"`,
            ],
            { retryable: false },
          );
        }
      };
      try {
        if (answer === 'y' || answer === 'yes') {
          // The plan shown is the one decided on: by the time of the answer (or of a retry through a
          // restart) someone else may have decided it and the next gate's plan wait, unseen here.
          const result = await send(() =>
            ctx.client().approveSession(session.id, undefined, session.planVersion),
          );
          say(`approved (plan version ${result.planVersion})`);
          return 'approved';
        }
        if (answer === 'n' || answer === 'no') {
          const reason = (await ask('Reason for rejecting:'))?.trim() || 'rejected from maos run';
          await send(() => ctx.client().rejectSession(session.id, reason, session.planVersion));
          say(`session ${session.id} rejected: ${reason}`);
          return 'rejected';
        }
      } catch (error) {
        // Someone else decided first (another terminal, the API): report it and carry on following.
        if (!(error instanceof CliError && error.code === 'INVALID_STATE')) throw error;
        // A failed attempt (a reset connection, a 504) may have been decided by the server already.
        const maybe = retried
          ? ' (an earlier attempt of this answer may have been taken before the failure)'
          : '';
        say(`not decided here: ${error.message}${maybe}`);
        return 'later';
      }
      say(
        `left waiting; decide later with: maos approve ${session.id} / maos reject ${session.id} --reason "…"`,
      );
      return 'later';
    },
    close() {
      reader?.close();
    },
  };
}
