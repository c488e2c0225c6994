// MAOS against another checkout of itself, in one process: the MAOS contenders of both trees
// (bench/orchestrator-maos.ts) run one session each in turn, the first of each pair alternating, and
// the script prints the paired differences of main-thread CPU per step with their standard errors.
// Differences of 10 µs per step are lost in the run-to-run spread of bench/orchestrator.ts on a
// shared machine; a few hundred pairs side by side resolve them. Run it against its own tree first
// (`node bench/orchestrator-ab.ts .`) to see the spread of a difference of nothing.
//   git worktree add ../maos-before <commit>   # with node_modules: npm ci there, or a symlink
//   node bench/orchestrator-ab.ts ../maos-before [pairs=300] [--llm [--frames=N]]
// `--frames=N`: every answer streamed as N network chunks (bench/llm-provider-process.ts) instead of
// one, for a change to what each chunk costs; both checkouts need that option of the benchmark.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as here from './orchestrator-maos.ts';

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const otherTree = positional[0];
if (!otherTree) {
  console.error('usage: node bench/orchestrator-ab.ts <other checkout> [pairs=300] [--llm [--frames=N]]');
  process.exit(2);
}
const PAIRS = Number(positional[1] ?? 300);
const MODE = process.argv.includes('--llm') ? 'llm' : 'noop';
const framesArgument = process.argv.find((arg) => arg.startsWith('--frames='));
const FRAMES = framesArgument === undefined ? 1 : Number(framesArgument.slice('--frames='.length));
if (!Number.isInteger(FRAMES) || FRAMES < 1 || (FRAMES > 1 && MODE !== 'llm')) {
  console.error('--frames=N takes a positive integer and goes with --llm (answers of LLM agents)');
  process.exit(2);
}
const WARM_UP_PAIRS = 5;

type MaosModule = typeof here;

interface Side {
  name: string;
  module: MaosModule;
  contender: here.Contender;
  cpu: { seq: number[]; fan: number[] };
  overhead: { seq: number[]; fan: number[] };
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Standard error of the mean. */
function standardError(values: readonly number[]): number {
  const m = mean(values);
  const variance = values.reduce((sum, value) => sum + (value - m) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance / values.length);
}

async function runPair(first: Side, second: Side, record: boolean): Promise<void> {
  for (const side of [first, second]) {
    const seq = await side.module.withThreadCpu(() => side.contender.seq(), here.STEPS);
    const fan = await side.module.withThreadCpu(() => side.contender.fan(), here.STEPS + 1);
    if (!record) continue;
    side.cpu.seq.push(seq.cpuUs);
    side.cpu.fan.push(fan.cpuUs);
    side.overhead.seq.push(seq.value);
    side.overhead.fan.push(fan.value);
  }
}

async function main(): Promise<void> {
  const otherPath = resolve(otherTree!);
  const other = (await import(
    pathToFileURL(join(otherPath, 'bench/orchestrator-maos.ts')).href
  )) as MaosModule;
  // An older checkout's prepareMaos ignores the option: its answers would come in one chunk.
  if (FRAMES > 1 && !(other as { STREAMED_ANSWERS?: boolean }).STREAMED_ANSWERS) {
    console.error(`${otherPath}: its bench/orchestrator-maos.ts cannot stream answers (--frames)`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-ab-'));
  const loadBefore = loadavg();
  const side = async (name: string, module: MaosModule): Promise<Side> => ({
    name,
    module,
    contender: await module.prepareMaos(join(dir, name), MODE, { frames: FRAMES }),
    cpu: { seq: [], fan: [] },
    overhead: { seq: [], fan: [] },
  });
  const sides = [await side('other', other), await side('this', here)];
  const [before, after] = sides as [Side, Side];
  try {
    for (let pair = -WARM_UP_PAIRS; pair < PAIRS; pair++) {
      const record = pair >= 0;
      if (pair % 2 === 0) await runPair(before, after, record);
      else await runPair(after, before, record);
    }
  } finally {
    for (const { contender } of sides) await contender.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg();
  const us = (value: number) => `${Math.round(value).toLocaleString('en-US')} µs`;
  console.log(
    `MAOS ${MODE === 'llm' ? `with LLM agents${FRAMES > 1 ? ` (answers in ${FRAMES} chunks)` : ''}` : 'engine alone'}, ` +
      `this tree against ${otherPath}, ${PAIRS} pairs ` +
      `(load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ` +
      `${loadAfter.map((x) => x.toFixed(2)).join(' ')} after)\n`,
  );
  for (const shape of ['seq', 'fan'] as const) {
    const differences = after.cpu[shape].map((value, i) => value - before.cpu[shape][i]!);
    console.log(
      `  ${shape === 'seq' ? `${here.STEPS}-step chain` : `${here.STEPS}-way fan-out`}: main-thread CPU per step, ` +
        `median ${us(here.median(before.cpu[shape]))} → ${us(here.median(after.cpu[shape]))}; ` +
        `paired difference ${mean(differences).toFixed(1)} ± ${standardError(differences).toFixed(1)} µs ` +
        `(mean ± standard error); overhead per step, median ${us(here.median(before.overhead[shape]))} → ` +
        `${us(here.median(after.overhead[shape]))}`,
    );
  }
}

await main();
