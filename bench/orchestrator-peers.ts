// Peers measured by bench/orchestrator.ts in the same run: LangGraph.js with its SQLite checkpointer
// and Mastra workflows with LibSQL storage, both durable (synchronous=FULL), running the same two
// shapes with steps that do nothing. They are dev dependencies of bench/ only (bench/package.json,
// `npm install --prefix bench`); when they are not installed the bench says so and measures MAOS alone.
// Modules are loaded by name at run time, so the typecheck does not depend on them being installed.
import { join } from 'node:path';

export interface ShapeFigures {
  /** Median µs per step of the sequential chain. */
  seq: number;
  /** Median µs per step of the fan-out with its join (branches + 1). */
  fan: number;
}

export interface PeerReport {
  name: string;
  figures?: ShapeFigures;
  /** Why the peer was not measured (not installed, failed). */
  skipped?: string;
  /** Storage settings as verified after the runs. */
  storage?: string;
}

export interface PeerOptions {
  runs: number;
  steps: number;
  /** Temporary folder for the peers' database files. */
  dir: string;
}

// biome-ignore lint/suspicious/noExplicitAny: peer modules are loaded untyped (see the header)
type Untyped = any;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function load(specifier: string): Promise<Untyped> {
  return import(specifier);
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** Runs `seq` and `fan` alternately (after warm-up), `runs` times, and returns median µs per step. */
async function measureShapes(
  options: PeerOptions,
  seq: () => Promise<void>,
  fan: () => Promise<void>,
): Promise<ShapeFigures> {
  for (let i = 0; i < 3; i++) {
    await seq();
    await fan();
  }
  const seqUs: number[] = [];
  const fanUs: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    let started = performance.now();
    await seq();
    seqUs.push(((performance.now() - started) * 1000) / options.steps);
    started = performance.now();
    await fan();
    fanUs.push(((performance.now() - started) * 1000) / (options.steps + 1));
  }
  return { seq: median(seqUs), fan: median(fanUs) };
}

/** LangGraph.js StateGraph, SqliteSaver checkpointer (WAL, synchronous=FULL), default durability. */
async function measureLangGraph(options: PeerOptions): Promise<PeerReport> {
  const name = 'LangGraph.js + SQLite checkpointer';
  const lg = await load('@langchain/langgraph');
  const { SqliteSaver } = await load('@langchain/langgraph-checkpoint-sqlite');
  const saver = SqliteSaver.fromConnString(join(options.dir, 'langgraph.db'));
  saver.setup(); // WAL, tables
  saver.db.pragma('synchronous = FULL');
  const state = lg.Annotation.Root({
    n: lg.Annotation({ reducer: (a: number, b: number) => a + b, default: () => 0 }),
  });
  const noop = async () => ({ n: 1 });

  let chain = new lg.StateGraph(state);
  for (let i = 0; i < options.steps; i++) chain = chain.addNode(`s${i}`, noop);
  chain = chain.addEdge(lg.START, 's0');
  for (let i = 1; i < options.steps; i++) chain = chain.addEdge(`s${i - 1}`, `s${i}`);
  const seqGraph = chain.addEdge(`s${options.steps - 1}`, lg.END).compile({ checkpointer: saver });

  const branches = Array.from({ length: options.steps }, (_, i) => `f${i}`);
  let fan = new lg.StateGraph(state);
  for (const branch of branches) fan = fan.addNode(branch, noop);
  fan = fan.addNode('join', noop);
  for (const branch of branches) fan = fan.addEdge(lg.START, branch);
  // A waiting edge: `join` runs once, after every branch.
  const fanGraph = fan.addEdge(branches, 'join').addEdge('join', lg.END).compile({ checkpointer: saver });

  let thread = 0;
  const invoke = async (graph: Untyped, expected: number) => {
    const config = { configurable: { thread_id: `t${++thread}` }, recursionLimit: 200 };
    const result = await graph.invoke({ n: 0 }, config);
    if (result.n !== expected) throw new Error(`LangGraph returned n=${result.n}, expected ${expected}`);
  };
  const figures = await measureShapes(
    options,
    () => invoke(seqGraph, options.steps),
    () => invoke(fanGraph, options.steps + 1),
  );
  const sync = saver.db.pragma('synchronous', { simple: true });
  const journal = saver.db.pragma('journal_mode', { simple: true });
  const checkpoints = saver.db.prepare('select count(*) as n from checkpoints').get().n;
  saver.db.close();
  return {
    name,
    figures,
    storage: `journal_mode=${journal}, synchronous=${sync} (2 = FULL), ${checkpoints} checkpoints stored`,
  };
}

/** Mastra workflows (createWorkflow/createStep) with LibSQLStore on a local file, synchronous=FULL. */
async function measureMastra(options: PeerOptions): Promise<PeerReport> {
  const name = 'Mastra workflows + LibSQL';
  const { z } = await load('zod');
  const { Mastra } = await load('@mastra/core');
  const { createWorkflow, createStep } = await load('@mastra/core/workflows');
  const { LibSQLStore } = await load('@mastra/libsql');
  const schema = z.object({ n: z.number() });
  const step = (id: string) =>
    createStep({
      id,
      inputSchema: schema,
      outputSchema: schema,
      execute: async ({ inputData }: { inputData: { n: number } }) => ({ n: inputData.n + 1 }),
    });

  let seq = createWorkflow({ id: 'seq', inputSchema: schema, outputSchema: schema });
  for (let i = 0; i < options.steps; i++) seq = seq.then(step(`s${i}`));
  seq.commit();

  const branches = Array.from({ length: options.steps }, (_, i) => step(`f${i}`));
  const joinInput = z.object(Object.fromEntries(branches.map((branch) => [branch.id, schema])));
  const joinStep = createStep({
    id: 'join',
    inputSchema: joinInput,
    outputSchema: schema,
    execute: async ({ inputData }: { inputData: Record<string, { n: number }> }) => ({
      n: Object.values(inputData).reduce((sum, value) => sum + value.n, 0) + 1,
    }),
  });
  const fan = createWorkflow({ id: 'fan', inputSchema: schema, outputSchema: schema })
    .parallel(branches)
    .then(joinStep)
    .commit();

  const storage = new LibSQLStore({ id: 'bench', url: `file:${join(options.dir, 'mastra.db')}` });
  const mastra = new Mastra({ workflows: { seq, fan }, storage, logger: false });
  await storage.init();
  const start = async (id: string, expected: number) => {
    const run = await mastra.getWorkflow(id).createRun();
    const result = await run.start({ inputData: { n: 0 } });
    if (result.status !== 'success' || result.result?.n !== expected) {
      throw new Error(
        `Mastra workflow ${id}: ${result.status} ${JSON.stringify(result.result ?? result.error)}`,
      );
    }
  };
  // LibSQL's workflow store sets synchronous=NORMAL while it initialises: FULL is set after that.
  await start('seq', options.steps);
  await storage.client.execute('PRAGMA synchronous = FULL');
  const figures = await measureShapes(
    options,
    () => start('seq', options.steps),
    () => start('fan', options.steps + 1),
  );
  const sync = (await storage.client.execute('PRAGMA synchronous')).rows[0]?.[0];
  const journal = (await storage.client.execute('PRAGMA journal_mode')).rows[0]?.[0];
  const snapshots = (await storage.client.execute('select count(*) from mastra_workflow_snapshot'))
    .rows[0]?.[0];
  storage.client.close?.();
  return {
    name,
    figures,
    storage: `journal_mode=${journal}, synchronous=${sync} (2 = FULL), ${snapshots} run snapshots stored`,
  };
}

/** Measures every installed peer; a missing or failing peer is reported in `skipped`. */
export async function measurePeers(options: PeerOptions): Promise<PeerReport[]> {
  const reports: PeerReport[] = [];
  for (const [name, measure] of [
    ['LangGraph.js + SQLite checkpointer', measureLangGraph],
    ['Mastra workflows + LibSQL', measureMastra],
  ] as const) {
    try {
      reports.push(await measure(options));
    } catch (error) {
      reports.push({
        name,
        skipped: isMissing(error)
          ? 'not installed (run: npm install --prefix bench)'
          : `failed: ${(error as Error).message}`,
      });
    }
  }
  return reports;
}
