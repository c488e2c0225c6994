// A helper process of a benchmark (a server under load, the scripted LLM provider) that speaks
// JSON lines: it prints one line when ready, then answers each line written to its stdin with
// one line. Shared by bench/api.ts and bench/orchestrator.ts.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface JsonLineProcess {
  /** The ready line, parsed. */
  ready: unknown;
  /** Its process id (to account its CPU time). */
  pid: number;
  /** Writes `line` and waits for the answer line, parsed. */
  request(line: string): Promise<unknown>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `node script ...args` and waits for its ready line; `name` goes into errors. */
export async function startJsonLineProcess(
  script: string,
  args: readonly string[],
  name: string,
): Promise<JsonLineProcess> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const nextLine = async (): Promise<unknown> => {
    const [line] = (await Promise.race([
      once(lines, 'line'),
      exited.then(([code]) => {
        throw new Error(`${name} exited with code ${code}`);
      }),
    ])) as [string];
    return JSON.parse(line);
  };
  try {
    const ready = await nextLine();
    return {
      ready,
      pid: child.pid!,
      async request(line) {
        child.stdin.write(`${line}\n`);
        return nextLine();
      },
      async stop() {
        child.kill('SIGTERM');
        await exited;
      },
    };
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
}
