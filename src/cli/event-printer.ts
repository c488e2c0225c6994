// Printing followed events (`maos run --follow`) and stored ones (`maos logs`): one line each,
// except that the pieces of a streamed line (`task.output` with `partial`, see docs/api.md) are
// printed as one line. The `[name]` prefix starts it, each piece continues it, and a line break
// ends it: the line's own, or the next event that is not its continuation.
import type { EventDto } from '../http/dto.ts';
import { formatEvent, formatOutputBody, formatTime, type Output, type Painter } from './output.ts';

/** Prints events one after the other; see {@link createEventPrinter}. */
export interface EventPrinter {
  print(event: EventDto): void;
  /** Ends a streamed line left open (the stream stopped). */
  end(): void;
}

/** `run --follow`: each event as {@link formatEvent} writes it; events it leaves out are skipped. */
export function createEventPrinter(
  out: Pick<Output, 'write' | 'paint'>,
  taskNames: Map<string, string>,
): EventPrinter {
  return createStreamedLinePrinter(out, (event) => formatEvent(event, taskNames, out.paint));
}

/**
 * `logs`: every event as {@link formatLogLine} writes it; a model's paragraph reads as one line,
 * under the seq of its first piece.
 */
export function createLogPrinter(
  out: Pick<Output, 'write' | 'paint'>,
  taskNames: Map<string, string>,
): EventPrinter {
  return createStreamedLinePrinter(out, (event) => formatLogLine(event, taskNames, out.paint));
}

/** `logs` line: `#12 2026-11-25 17:50:47 <formatted event>`. */
export function formatLogLine(event: EventDto, taskNames: Map<string, string>, paint: Painter): string {
  const text = formatEvent(event, taskNames, paint, true) ?? event.type;
  return `${paint.dim(`#${event.seq} ${formatTime(event.createdAt)}`)} ${text}`;
}

/** Writes `formatLine(event)` per event (none when undefined), joining the pieces of a streamed line. */
function createStreamedLinePrinter(
  out: Pick<Output, 'write' | 'paint'>,
  formatLine: (event: EventDto) => string | undefined,
): EventPrinter {
  // `taskId stream attempt` of the line a partial piece left open.
  let open: string | undefined;
  const close = () => {
    if (open !== undefined) out.write('\n');
    open = undefined;
  };
  return {
    print(event) {
      const data = event.data ?? {};
      // A new attempt of the task starts a new line, whatever the last one left open.
      const key =
        event.type === 'task.output'
          ? `${String(data.taskId)} ${String(data.stream)} ${String(data.attempt)}`
          : undefined;
      if (key !== undefined && key === open) {
        out.write(formatOutputBody(data, out.paint));
      } else {
        const text = formatLine(event);
        if (text === undefined && key === undefined) return;
        close();
        out.write(text ?? '');
      }
      if (key !== undefined && data.partial === true) open = key;
      else {
        open = undefined;
        out.write('\n');
      }
    },
    end: close,
  };
}
