// Human-in-the-loop MCP tools: approve or reject a plan that waits for approval, and steer a
// session with a message to its orchestrator. Registered only when the server is given a
// SessionSteering implementation (the engine's approval and steering operations).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Actor } from '../engine/session-service.ts';
import { toSessionStatus } from './session-view.ts';
import {
  approvePlanOutputSchema,
  sendMessageOutputSchema,
  sessionStatusOutputSchema,
} from './tool-output-schemas.ts';
import { runTool, sessionIdSchema, TOOL_SPECS, withStoredSessionId } from './tool-runner.ts';
import type { ToolDependencies } from './tools.ts';

/** What an approval answers: the plan version started, its ready tasks, and the task names it rewrote. */
export interface ApprovalAnswer {
  planVersion: number;
  readied: number;
  /**
   * Task name as written in the edited plan → the name used (spaces joined by `-`); `{}` when none
   * (absent in the answer of an older server, for `maos mcp` in remote mode).
   */
  renamedTasks?: Record<string, string>;
}

/** The engine operations behind the steering tools; every call is scoped to the actor's tenant. */
export interface SessionSteering {
  /**
   * Starts a session in `awaiting_approval`, as planned or with an edited plan (a new plan version).
   * `planVersion`: the version the caller decided on; INVALID_STATE when another one waits.
   */
  approvePlan(
    actor: Actor,
    sessionId: string,
    editedPlan?: unknown,
    planVersion?: number,
  ): Promise<ApprovalAnswer>;
  /** Ends a session in `awaiting_approval` as failed, with the reason (`planVersion` as for approvePlan). */
  rejectPlan(actor: Actor, sessionId: string, reason: string, planVersion?: number): Promise<void>;
  /** Stores a message the orchestrator reads at the next phase gate and in the synthesis. */
  sendMessage(actor: Actor, sessionId: string, message: string): Promise<{ id: string; createdAt: number }>;
}

/** Steering messages are course corrections, not new objectives (the REST route's limit too). */
const MAX_MESSAGE_CHARS = 4000;

/** The plan version decided on, as session_status shows it: another plan waiting is INVALID_STATE. */
const planVersionSchema = z
  .number()
  .int()
  .min(0)
  .optional()
  .describe(
    'The plan version (planVersion) read before deciding: when another plan waits by now (an adaptive session at its next gate, the one read decided meanwhile), the call is refused with INVALID_STATE and nothing is decided.',
  );

const approveInputSchema = z.strictObject({
  session_id: sessionIdSchema,
  plan_version: planVersionSchema,
  plan: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(
      'An edited plan replacing the tasks that have not started: { phases: [{ name, tasks: [{ name, role, instructions, dependsOn?, runner?, agent? }] }] } (`depends_on` is read as `dependsOn`); `agent` names an existing agent to reuse (null: a new one; absent: the task keeps its agent). Omit (or send the plan unchanged) to approve the plan as it is.',
    ),
});

const rejectInputSchema = z.strictObject({
  session_id: sessionIdSchema,
  reason: z.string().trim().min(1).max(2000).describe('Why the plan is rejected; the session fails with it.'),
  plan_version: planVersionSchema,
});

const messageInputSchema = z.strictObject({
  session_id: sessionIdSchema,
  message: z
    .string()
    .trim()
    .min(1)
    .max(MAX_MESSAGE_CHARS)
    .describe('What the orchestrator should take into account from now on.'),
});

/** Registers approve_plan, reject_plan and send_message on `server`. */
export function registerSteeringTools(
  server: McpServer,
  deps: ToolDependencies,
  steering: SessionSteering,
): void {
  server.registerTool(
    'approve_plan',
    {
      title: 'Approve a session plan',
      description:
        'Starts a session that waits for plan approval (status `awaiting_approval`), as planned or with an edited `plan` (validated like a generated one, kept as a new plan version). Returns the new plan version and the session state. Other states give INVALID_STATE.',
      inputSchema: approveInputSchema,
      outputSchema: approvePlanOutputSchema,
      annotations: { title: 'Approve a session plan', destructiveHint: false, openWorldHint: false },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.approve_plan, args.session_id, async (caller) => {
        const approved = await steering.approvePlan(
          caller.actor,
          args.session_id,
          args.plan,
          args.plan_version,
        );
        const detail = await deps.service.getSession(caller.actor, args.session_id);
        return { ...approved, ...toSessionStatus(detail) };
      })(extra);
    },
  );

  server.registerTool(
    'reject_plan',
    {
      title: 'Reject a session plan',
      description:
        'Ends a session that waits for plan approval: it fails with the given reason. Other states give INVALID_STATE.',
      inputSchema: rejectInputSchema,
      outputSchema: sessionStatusOutputSchema,
      annotations: { title: 'Reject a session plan', destructiveHint: true, openWorldHint: false },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.reject_plan, args.session_id, async (caller) => {
        await steering.rejectPlan(caller.actor, args.session_id, args.reason, args.plan_version);
        return toSessionStatus(await deps.service.getSession(caller.actor, args.session_id));
      })(extra);
    },
  );

  server.registerTool(
    'send_message',
    {
      title: 'Steer a MAOS session',
      description:
        'Sends a message to the orchestrator of a session it plans (started without `agents`), e.g. "prefer PostgreSQL" or "skip the UI"; it is taken into account at the next phase gate and in the final synthesis. INVALID_STATE when no orchestrator will read it: the session has ended, was started with explicit `agents`, or its synthesis has begun.',
      inputSchema: messageInputSchema,
      outputSchema: sendMessageOutputSchema,
      annotations: { title: 'Steer a MAOS session', destructiveHint: false, openWorldHint: false },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.send_message, args.session_id, async (caller) => {
        const stored = await steering.sendMessage(caller.actor, args.session_id, args.message);
        return {
          sessionId: args.session_id,
          messageId: stored.id,
          createdAt: new Date(stored.createdAt).toISOString(),
        };
      })(extra);
    },
  );
}
