// Orchestration overhead per agent step, MAOS next to its peers, measured in the same run.
// MAOS: LLM agents (the real AI SDK provider code) against the scripted LLM server answering at once
// (in a process of its own, as a real provider is remote),
// through the durable engine (SQLite WAL, `store.synchronous: full`); overhead = wall time − time spent inside
// provider calls (critical path), per step. Peers (bench/orchestrator-peers.ts): LangGraph.js with its
// SQLite checkpointer and Mastra workflows with LibSQL, steps that do nothing, synchronous=FULL.
// Shapes: a 20-step sequential chain and a 20-way fan-out with a join. See bench/README.md.
//   npm install --prefix bench        # once, for the peers (MAOS alone is measured without them)
//   node bench/orchestrator.ts [runs=20]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { type Contender, median, prepareMaos, STEPS, withThreadCpu } from './orchestrator-maos.ts';
import { preparePeers, type ShapeRunner } from './orchestrator-peers.ts';

const RUNS = Number(process.argv[2] ?? 20);

/** The durability floor of this disk: one bare better-sqlite3 commit (one insert, WAL, FULL) per step. */
function prepareBareCommit(dir: string): Contender {
  const sqlite = new SqliteDatabase(join(dir, 'bare.db'));
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.exec('create table steps (id integer primary key, data text)');
  const insert = sqlite.prepare('insert into steps (data) values (?)');
  const commit = sqlite.transaction((data: string) => insert.run(data));
  return {
    name: 'one bare SQLite commit (fsync) per step',
    async seq() {
      const started = performance.now();
      for (let step = 0; step < STEPS; step++) commit(`step ${step}`);
      return ((performance.now() - started) * 1000) / STEPS;
    },
    fan: async () => Number.NaN,
    async close() {
      sqlite.close();
    },
  };
}

/** A peer runs steps that do nothing: its whole wall time is overhead. */
function timePeer(runner: ShapeRunner): Contender {
  const timed = async (run: () => Promise<void>, steps: number) => {
    const started = performance.now();
    await run();
    return ((performance.now() - started) * 1000) / steps;
  };
  return {
    name: runner.name,
    seq: () => timed(runner.seq, STEPS),
    fan: () => timed(runner.fan, STEPS + 1),
    describe: runner.describe,
    close: runner.close,
  };
}

function formatUs(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')} µs` : 'n/a';
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-orch-'));
  const loadBefore = loadavg();
  const contenders: Contender[] = [];
  try {
    contenders.push(
      await prepareMaos(join(dir, 'maos'), 'llm'),
      await prepareMaos(join(dir, 'noop'), 'noop'),
    );
    const peers = await preparePeers({ steps: STEPS, dir });
    contenders.push(...peers.runners.map(timePeer), prepareBareCommit(dir));
    // Interleaved: every run measures every contender once, so all see the same disk and CPU load
    // (fsync latency on a shared machine changes several-fold within minutes).
    const figures = contenders.map(() => ({
      seq: [] as number[],
      fan: [] as number[],
      cpuSeq: [] as number[],
      cpuFan: [] as number[],
    }));
    for (let run = -3; run < RUNS; run++) {
      for (const [index, contender] of contenders.entries()) {
        const seq = await withThreadCpu(() => contender.seq(), STEPS);
        const fan = await withThreadCpu(() => contender.fan(), STEPS + 1);
        if (run < 0) continue; // warm-up: module loading, JIT, first connections
        figures[index]!.seq.push(seq.value);
        figures[index]!.fan.push(fan.value);
        figures[index]!.cpuSeq.push(seq.cpuUs);
        figures[index]!.cpuFan.push(fan.cpuUs);
      }
    }
    const loadAfter = loadavg();
    const results = contenders.map((contender, index) => ({
      name: contender.name,
      seq: median(figures[index]!.seq),
      fan: median(figures[index]!.fan),
      cpuSeq: median(figures[index]!.cpuSeq),
      cpuFan: median(figures[index]!.cpuFan),
    }));
    const width = Math.max(...results.map((row) => row.name.length));
    console.log(
      `Orchestration overhead per agent step, median of ${RUNS} interleaved runs (node ${process.version};` +
        ` load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before,` +
        ` ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after)\n`,
    );
    console.log(`  ${''.padEnd(width)}  ${STEPS}-step chain   ${STEPS}-way fan-out + join`);
    for (const row of results) {
      console.log(
        `  ${row.name.padEnd(width)}  ${formatUs(row.seq).padStart(12)}   ${formatUs(row.fan).padStart(12)}`,
      );
    }
    // Steadier than wall time on a shared machine: CPU of the benchmark's own thread per step
    // (for MAOS with LLM agents this includes the AI SDK's HTTP and stream work inside the calls,
    // which the overhead above leaves out; background fsyncs run on other threads).
    console.log(`\n  Main-thread CPU per step (median):`);
    for (const row of results) {
      console.log(
        `  ${row.name.padEnd(width)}  ${formatUs(row.cpuSeq).padStart(12)}   ${formatUs(row.cpuFan).padStart(12)}`,
      );
    }
    console.log('');
    for (const contender of contenders) {
      if (contender.describe) console.log(`  ${contender.name}: ${await contender.describe()}`);
    }
    for (const peer of peers.skipped) console.log(`  ${peer.name}: ${peer.reason}`);
    const maos = results[0]!;
    const engineAlone = results[1]!;
    const measured = results.slice(2, 2 + peers.runners.length);
    if (measured.length === 0) {
      console.log(
        '\n  Peers not measured: install them with `npm install --prefix bench` (see bench/README.md).',
      );
      return;
    }
    for (const shape of ['seq', 'fan'] as const) {
      const best = Math.min(...measured.map((row) => row[shape]));
      const target = best / 5;
      const verdict = (value: number) =>
        `${formatUs(value)}: ${value <= target ? 'met' : 'NOT met'}, ${(best / value).toFixed(1)}× the better peer's speed`;
      console.log(
        `  target (${shape === 'seq' ? 'chain' : 'fan-out'}): ≤ ${formatUs(target)} (one fifth of the better peer); ` +
          `MAOS ${verdict(maos[shape])}; engine alone ${verdict(engineAlone[shape])}`,
      );
    }
  } finally {
    for (const contender of contenders) await contender.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
