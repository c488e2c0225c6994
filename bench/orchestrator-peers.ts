// Peers measured by bench/orchestrator.ts in the same run: LangGraph.js with its SQLite checkpointer
// and Mastra workflows with LibSQL storage, both durable (synchronous=FULL), running the same two
// shapes with steps that do nothing. They are dev dependencies of bench/ only (bench/package.json,
// `npm install --prefix bench`); when they are not installed the bench says so and measures MAOS alone.
// Modules are loaded by name at run time, so the typecheck does not depend on them being installed.
import { join } from 'node:path';

export interface PeerOptions {
  steps: number;
  /** Temporary folder for the peers' database files. */
  dir: string;
}

// biome-ignore lint/suspicious/noExplicitAny: peer modules are loaded untyped (see the header)
type Untyped = any;

async function load(specifier: string): Promise<Untyped> {
  return import(specifier);
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** One framework ready to run both shapes; `describe` reports its storage settings after the runs. */
export interface ShapeRunner {
  name: string;
  seq(): Promise<void>;
  fan(): Promise<void>;
  describe(): Promise<string>;
  close(): Promise<void>;
}

/** LangGraph.js StateGraph, SqliteSaver checkpointer (WAL, synchronous=FULL), default durability. */
async function prepareLangGraph(options: PeerOptions): Promise<ShapeRunner> {
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
  return {
    name: PEER_NAMES.langGraph,
    seq: () => invoke(seqGraph, options.steps),
    fan: () => invoke(fanGraph, options.steps + 1),
    async describe() {
      const sync = saver.db.pragma('synchronous', { simple: true });
      const journal = saver.db.pragma('journal_mode', { simple: true });
      const checkpoints = saver.db.prepare('select count(*) as n from checkpoints').get().n;
      return `journal_mode=${journal}, synchronous=${sync} (2 = FULL), ${checkpoints} checkpoints stored`;
    },
    async close() {
      saver.db.close();
    },
  };
}

/** Mastra workflows (createWorkflow/createStep) with LibSQLStore on a local file, synchronous=FULL. */
async function prepareMastra(options: PeerOptions): Promise<ShapeRunner> {
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
  return {
    name: PEER_NAMES.mastra,
    seq: () => start('seq', options.steps),
    fan: () => start('fan', options.steps + 1),
    async describe() {
      const sync = (await storage.client.execute('PRAGMA synchronous')).rows[0]?.[0];
      const journal = (await storage.client.execute('PRAGMA journal_mode')).rows[0]?.[0];
      const snapshots = (await storage.client.execute('select count(*) from mastra_workflow_snapshot'))
        .rows[0]?.[0];
      return `journal_mode=${journal}, synchronous=${sync} (2 = FULL), ${snapshots} run snapshots stored`;
    },
    async close() {
      storage.client.close?.();
    },
  };
}

const PEER_NAMES = {
  langGraph: 'LangGraph.js + SQLite checkpointer',
  mastra: 'Mastra workflows + LibSQL',
} as const;

/**
 * Prepares every installed peer (graphs and workflows built, storage open and set to FULL). A peer
 * that is missing or fails to start is returned in `skipped` with the reason.
 */
export async function preparePeers(
  options: PeerOptions,
): Promise<{ runners: ShapeRunner[]; skipped: Array<{ name: string; reason: string }> }> {
  const runners: ShapeRunner[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const [name, prepare] of [
    [PEER_NAMES.langGraph, prepareLangGraph],
    [PEER_NAMES.mastra, prepareMastra],
  ] as const) {
    try {
      runners.push(await prepare(options));
    } catch (error) {
      skipped.push({
        name,
        reason: isMissing(error)
          ? 'not installed (run: npm install --prefix bench)'
          : `failed: ${(error as Error).message}`,
      });
    }
  }
  return { runners, skipped };
}
