import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import type { EventDto, TaskDto } from '../http/dto.ts';
import { createEventPrinter, createLogPrinter, formatLogLine } from './event-printer.ts';
import { CliError, EXIT, exitCodeForStatus, toCliError } from './exit-codes.ts';
import {
  createOutput,
  formatAgentTable,
  formatDuration,
  formatEvent,
  formatSessionControls,
  formatSessionDetail,
  formatTable,
  showControls,
  showControlsInLine,
} from './output.ts';

const plain = createOutput({
  json: false,
  color: false,
  stdout: new PassThrough(),
  stderr: new PassThrough(),
}).paint;

function event(type: string, data: Record<string, unknown>): EventDto {
  return { sessionId: 's', seq: 1, type, data, createdAt: '2026-01-01T00:00:00.000Z' };
}

describe('output', () => {
  test('formatTable aligns columns to the widest cell', () => {
    const lines = formatTable(
      ['ID', 'STATUS', 'X'],
      [
        ['a', 'running', 'last'],
        ['longer-id', 'ok', ''],
      ],
    );
    assert.deepEqual(lines, ['ID         STATUS   X', 'a          running  last', 'longer-id  ok']);
  });

  test('usage by agent: tasks, tokens and cost per agent and for the session; none without tokens', () => {
    const usage = (inputTokens: number, outputTokens: number, costUsd: number) => ({
      inputTokens,
      outputTokens,
      cacheReadTokens: 0,
      costUsd,
    });
    const task = (agentId: string | null) => ({ agentId }) as TaskDto;
    const session = {
      usage: usage(330, 33, 0.0042),
      tasks: [task('a1'), task('a2'), task('a1'), task(null)],
      agents: [
        { id: 'a1', name: 'sketch', role: 'architect', usage: usage(200, 20, 0.0025) },
        // A cheap model's cost, to the millionth as it is kept: not rounded away to $0.0000.
        { id: 'a2', name: 'survey', role: 'researcher', usage: usage(100, 10, 0.000044) },
      ],
    };
    assert.deepEqual(formatAgentTable(session), [
      'AGENT      ROLE        TASKS  INPUT  OUTPUT  CACHE READ  COST',
      'sketch     architect   2      200    20      0           $0.002500',
      'survey     researcher  1      100    10      0           $0.000044',
      '(session)              4      330    33      0           $0.004200',
    ]);
    const idle = { ...session, agents: session.agents.map((agent) => ({ ...agent, usage: usage(0, 0, 0) })) };
    assert.deepEqual(formatAgentTable(idle), []);
  });

  test('colours only when asked', () => {
    const stdout = new PassThrough();
    const coloured = createOutput({ json: false, color: true, stdout, stderr: new PassThrough() });
    assert.equal(coloured.paint.red('x'), '\u001b[31mx\u001b[39m');
    assert.equal(plain.red('x'), 'x');
    // Alignment ignores colour codes.
    const lines = formatTable(['A', 'B'], [[coloured.paint.green('ok'), 'z']]);
    assert.equal(lines[1], `${coloured.paint.green('ok')}  z`);
  });

  test('printError writes `error CODE: message` and details to stderr only', () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    createOutput({ json: false, color: false, stdout, stderr }).printError(
      new CliError('VALIDATION_FAILED', 'bad request', EXIT.USAGE, ['agents.0.role: bad']),
    );
    assert.equal(stderr.read()?.toString(), 'error VALIDATION_FAILED: bad request\n  - agents.0.role: bad\n');
    assert.equal(stdout.read(), null);
  });

  test('task output is prefixed with the task name; bookkeeping is hidden unless verbose', () => {
    const names = new Map([['t1', 'build']]);
    assert.equal(
      formatEvent(event('task.output', { taskId: 't1', stream: 'stdout', line: 'hello\n' }), names, plain),
      '[build] hello',
    );
    assert.equal(
      formatEvent(event('task.status', { taskId: 't1', name: 'build', to: 'leased' }), names, plain),
      undefined,
    );
    assert.equal(
      formatEvent(
        event('task.status', { taskId: 't1', name: 'build', to: 'failed', attempt: 2, reason: 'exit 1' }),
        names,
        plain,
      ),
      '▸ build: failed (attempt 2) — exit 1',
    );
    assert.equal(formatEvent(event('session.finished', { status: 'completed' }), names, plain), undefined);
    assert.equal(
      formatEvent(event('session.finished', { status: 'completed' }), names, plain, true),
      '▸ session finished: completed',
    );
  });

  test('a task.usage event reads as the charge of its attempt in logs; run --follow leaves it out', () => {
    const names = new Map([['t1', 'build']]);
    const charge = {
      taskId: 't1',
      name: 'build',
      attempt: 1,
      usage: { inputTokens: 700, outputTokens: 300, cacheReadTokens: 0, costUsd: 0.5 },
    };
    assert.equal(formatEvent(event('task.usage', charge), names, plain), undefined);
    assert.equal(
      formatEvent(event('task.usage', charge), names, plain, true),
      '▸ build: attempt 1 charged 700 input, 300 output tokens, $0.500000',
    );
    assert.equal(
      formatLogLine(
        event('task.usage', { ...charge, usage: { ...charge.usage, cacheReadTokens: 50 } }),
        names,
        plain,
      ),
      '#1 2026-01-01 00:00:00 ▸ build: attempt 1 charged 700 input, 300 output, 50 cache read tokens, $0.500000',
    );
    // Named by id only, its usage unreadable (an event whose stored data a hand edit damaged).
    assert.equal(
      formatEvent(event('task.usage', { taskId: 't1', usage: 'x' }), names, plain, true),
      '▸ build: charged ? input, ? output tokens, $?',
    );
  });

  test('the pieces of a streamed line print as one line; another event or the end closes it', () => {
    const names = new Map([
      ['t1', 'writer'],
      ['t2', 'coder'],
    ]);
    let printed = '';
    const printer = createEventPrinter({ write: (text) => (printed += text), paint: plain }, names);
    const piece = (taskId: string, line: string, partial?: true) =>
      event('task.output', { taskId, stream: 'text', line, ...(partial ? { partial } : {}) });
    printer.print(piece('t1', 'The plan ', true));
    printer.print(piece('t1', 'has two ', true));
    printer.print(piece('t1', 'steps.'));
    printer.print(piece('t1', 'Second ', true));
    printer.print(piece('t2', 'other task', true));
    printer.print(event('task.status', { taskId: 't2', name: 'coder', to: 'failed', reason: 'exit 1' }));
    printer.print(piece('t1', 'tail', true));
    printer.end();
    printer.end();
    assert.equal(
      printed,
      [
        '[writer] The plan has two steps.',
        '[writer] Second ',
        '[coder] other task',
        '▸ coder: failed — exit 1',
        '[writer] tail',
        '',
      ].join('\n'),
    );
  });

  test('a line an earlier attempt left unfinished is not continued by the next attempt', () => {
    let printed = '';
    const printer = createEventPrinter(
      { write: (text) => (printed += text), paint: plain },
      new Map([['t1', 'writer']]),
    );
    const piece = (attempt: number, line: string, partial?: true) =>
      event('task.output', { taskId: 't1', stream: 'text', line, attempt, ...(partial ? { partial } : {}) });
    printer.print(piece(1, 'SYNTH', true));
    printer.print(piece(2, 'SYNTHESIS done'));
    printer.end();
    assert.equal(printed, ['[writer] SYNTH', '[writer] SYNTHESIS done', ''].join('\n'));
  });

  test('maos logs: a streamed line is one log line under the seq of its first piece', () => {
    let printed = '';
    const printer = createLogPrinter(
      { write: (text) => (printed += text), paint: plain },
      new Map([['t1', 'writer']]),
    );
    let seq = 0;
    const at = (type: string, data: Record<string, unknown>): EventDto => ({
      ...event(type, data),
      seq: ++seq,
    });
    const piece = (line: string, partial?: true) =>
      at('task.output', { taskId: 't1', stream: 'text', line, attempt: 1, ...(partial ? { partial } : {}) });
    printer.print(piece('A model wri', true));
    printer.print(piece('tes a para', true));
    printer.print(piece('graph.'));
    printer.print(piece('Then ', true));
    printer.print(at('task.status', { taskId: 't1', to: 'failed', reason: 'cut' }));
    printer.print(piece('last', true));
    printer.end();
    assert.equal(
      printed,
      [
        '#1 2026-01-01 00:00:00 [writer] A model writes a paragraph.',
        '#4 2026-01-01 00:00:00 [writer] Then ',
        '#5 2026-01-01 00:00:00 ▸ writer: failed — cut',
        '#6 2026-01-01 00:00:00 [writer] last',
        '',
      ].join('\n'),
    );
  });

  test('agent and user messages are shown as from → to: text', () => {
    const names = new Map<string, string>();
    assert.equal(
      formatEvent(event('agent.message', { from: 'api', to: 'docs', text: 'Port is 8080' }), names, plain),
      '▸ message api → docs: Port is 8080',
    );
    assert.equal(
      formatEvent(event('user.message', { from: 'user', to: 'orchestrator', text: 'Cheaper' }), names, plain),
      '▸ message user → orchestrator: Cheaper',
    );
  });

  test('session controls: approval waiting, budget with usage, deadline, thread; nothing when unset', () => {
    assert.deepEqual(
      formatSessionControls({
        approval: { mode: 'required', pending: true, pendingPhase: 1 },
        budget: { maxTokens: 1000, maxCostUsd: 2, deadlineSeconds: 60, usedTokens: 120, usedCostUsd: 0.01 },
        deadline: '2026-01-01T00:01:00.000Z',
        threadId: 'blog',
      }),
      [
        'Approval  required (waiting: phase 1)',
        'Budget    120/1000 tokens, $0.010000/$2 spent, deadline 2026-01-01 00:01:00 (60 s)',
        'Thread    blog',
      ],
    );
    // A cost just over its limit does not read as the limit ("$0.0100/$0.01").
    assert.deepEqual(
      formatSessionControls({
        approval: { mode: 'none', pending: false, pendingPhase: null },
        budget: {
          maxTokens: null,
          maxCostUsd: 0.01,
          deadlineSeconds: null,
          usedTokens: 9,
          usedCostUsd: 0.010004,
        },
        deadline: null,
        threadId: null,
      }),
      ['Budget    $0.010004/$0.01 spent'],
    );
    // A limit below a millionth is written out, not in exponent notation ("$1e-7").
    assert.deepEqual(
      formatSessionControls({
        approval: { mode: 'none', pending: false, pendingPhase: null },
        budget: {
          maxTokens: null,
          maxCostUsd: 1e-7,
          deadlineSeconds: null,
          usedTokens: 9,
          usedCostUsd: 0.000001,
        },
        deadline: null,
        threadId: null,
      }),
      ['Budget    $0.000001/$0.0000001 spent'],
    );
    assert.deepEqual(
      formatSessionControls({
        approval: { mode: 'none', pending: false, pendingPhase: null },
        budget: null,
        deadline: null,
        threadId: null,
      }),
      [],
    );
  });

  test('escaping keeps letters of every script and emoji; a one-line place escapes tabs and line breaks', () => {
    // Chinese, Hebrew and Arabic (right-to-left letters, not overrides), emoji with a joiner and a
    // variation selector, accents: printed as they are.
    const text = '检查变更 בדוק مرحبا 👩\u200d💻 ❤\ufe0f café';
    assert.equal(showControls(text), text);
    assert.equal(showControlsInLine(text), text);
    // The controls and the bidirectional overrides and isolates that reorder what is shown.
    assert.equal(showControls('a\u202eb\u2066c\u0085d\u007fe'), 'a\\u202eb\\u2066c\\x85d\\x7fe');
    assert.equal(showControls('a\tb\nc'), 'a\tb\nc');
    assert.equal(showControlsInLine('a\tb\nc\u001b'), 'a\\x09b\\x0ac\\x1b');
  });

  test('formatDuration works on ISO strings and epoch ms', () => {
    assert.equal(formatDuration('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.500Z'), '1.5s');
    assert.equal(formatDuration(0, 125_000), '2m05s');
    assert.equal(formatDuration(null, 5), '-');
  });
});

describe('exit codes', () => {
  test('HTTP statuses map to documented exit codes', () => {
    assert.equal(exitCodeForStatus(400), EXIT.USAGE);
    assert.equal(exitCodeForStatus(401), EXIT.AUTH);
    assert.equal(exitCodeForStatus(403), EXIT.AUTH);
    assert.equal(exitCodeForStatus(404), EXIT.NOT_FOUND);
    assert.equal(exitCodeForStatus(409), EXIT.CONFLICT);
    assert.equal(exitCodeForStatus(429), EXIT.SERVER);
    assert.equal(exitCodeForStatus(503), EXIT.SERVER);
  });

  test('an invalid config is a usage error listing every problem; unknown errors keep no stack', () => {
    const error = toCliError(
      new AppError('CONFIG_INVALID', 'Invalid configuration:\n  - a\n  - b', { details: ['a', 'b'] }),
    );
    assert.equal(error.exitCode, EXIT.USAGE);
    assert.deepEqual(error.details, ['a', 'b']);
    assert.equal(error.message, 'Invalid configuration:');
    assert.equal(toCliError(new TypeError('boom')).exitCode, EXIT.SERVER);
  });

  test('sessions show: the whole result last, not cut at 500 characters; a run time only once ended', () => {
    const result = `## Summary\nDone.\n## Deliverable\n${'x'.repeat(900)}\nEND-OF-RESULT\n`;
    const session = {
      id: 's1',
      objective: 'o',
      status: 'completed',
      strategy: 'pipeline',
      createdAt: '2026-01-01T00:00:00.000Z',
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:02.000Z',
      error: null,
      result,
      tasks: [],
      agents: [],
      usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
    } as unknown as Parameters<typeof formatSessionDetail>[0];
    const lines = formatSessionDetail(session, plain);
    assert.ok(lines.includes('Finished  2026-01-01 00:00:02  (2.0s)'), lines.join('\n'));
    const running = formatSessionDetail(
      { ...session, status: 'running', finishedAt: null, result: null },
      plain,
    );
    assert.ok(running.includes('Finished  -'), running.join('\n'));
    assert.ok(!lines.some((line) => line.startsWith('Retry of')), lines.join('\n'));
    // A retry names the session it retries (`maos sessions retry`), as its JSON does in retryOf.
    const retry = formatSessionDetail({ ...session, retryOf: 'original-id' }, plain);
    assert.equal(retry[retry.indexOf('Finished  2026-01-01 00:00:02  (2.0s)') + 1], 'Retry of  original-id');
    const at = lines.indexOf('Result');
    assert.ok(at > 0, lines.join('\n'));
    assert.deepEqual(lines.slice(at + 1), [
      '## Summary',
      'Done.',
      '## Deliverable',
      'x'.repeat(900),
      'END-OF-RESULT',
    ]);
  });

  test("text others wrote reaches the terminal without its control sequences; a runner's colours pass", () => {
    const hostile = 'ok\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202eevil';
    const message = formatEvent(
      event('agent.message', { from: 'a', to: 'b', text: hostile }),
      new Map(),
      plain,
    );
    const status = formatEvent(
      event('task.status', { name: 't', to: 'failed', reason: hostile }),
      new Map(),
      plain,
    );
    const output = formatEvent(
      event('task.output', { name: 't', line: `\u001b[32mgreen\u001b[0m ${hostile}` }),
      new Map(),
      plain,
    );
    for (const text of [message, status, output]) {
      assert.ok(text?.includes('ok\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil'), text);
      for (const raw of ['\u0007', '\u009b', '\u202e', '\u001b]', '\u001b[2J'])
        assert.ok(!text?.includes(raw), `${JSON.stringify(raw)} in ${text}`);
    }
    assert.ok(output?.includes('\u001b[32mgreen\u001b[0m'), 'colour sequences of output lines pass');
    // A colour (or concealed text, SGR 8) left on by a line ends with it: the lines after it, the
    // session's status and summary among them, are not hidden or recoloured.
    for (const line of ['fake: all good\u001b[8m', 'x\u001b[30;40m']) {
      const shown = formatEvent(event('task.output', { name: 't', line }), new Map(), plain) ?? '';
      assert.ok(shown.endsWith('\u001b[0m'), JSON.stringify(shown));
    }
    const uncoloured = formatEvent(event('task.output', { name: 't', line: 'plain' }), new Map(), plain);
    assert.equal(uncoloured, '[t] plain', 'a line without colours is printed as it is');
    // An event type of a newer server, shown as JSON: which escapes C0 controls but not C1 or bidi.
    const unknown = formatEvent(event('plan.proposed', { text: hostile }), new Map(), plain, true);
    for (const raw of ['\u0007', '\u001b', '\u009b', '\u202e'])
      assert.ok(!unknown?.includes(raw), `${JSON.stringify(raw)} in ${unknown}`);
    const detail = formatSessionDetail(
      {
        id: 's1',
        objective: `objective ${hostile}`,
        status: 'failed',
        strategy: 'pipeline',
        createdAt: '2026-01-01T00:00:00.000Z',
        startedAt: null,
        finishedAt: null,
        error: hostile,
        result: `line 1\n${hostile}`,
        tasks: [],
        agents: [],
        usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
      } as unknown as Parameters<typeof formatSessionDetail>[0],
      plain,
    );
    for (const raw of ['\u0007', '\u001b', '\u009b', '\u202e'])
      assert.ok(!detail.join('\n').includes(raw), `${JSON.stringify(raw)} in ${detail.join('\n')}`);
    assert.deepEqual(detail.slice(detail.indexOf('Result') + 1), [
      'line 1',
      'ok\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil',
    ]);
  });
});
