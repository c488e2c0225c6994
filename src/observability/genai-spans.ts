// GenAI spans after the OpenTelemetry GenAI semantic conventions (development status):
// invoke_workflow → invoke_agent / plan → chat / execute_tool, with the required gen_ai.*
// attributes set at start (samplers see them) and usage at the end. Message content is opt-in.
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';

/** Provider name for spans of work MAOS does itself (workflow, planning without a model call). */
export const MAOS_PROVIDER = 'maos';

export interface GenAiTracerOptions {
  tracer: Tracer;
  /** Record prompts, completions, tool arguments and results (opt-in: they may hold personal data). */
  captureMessageContent: boolean;
}

export interface ChatStart {
  provider: string;
  model: string;
  operation?: 'chat' | 'text_completion' | 'generate_content';
  serverAddress?: string;
  serverPort?: number;
  maxTokens?: number;
  temperature?: number;
  conversationId?: string;
  /**
   * MAOS's own: the 1-based attempt of the LLM client (retries and fallbacks count on) and the
   * model call's 1-based step in an agent's tool loop (`maos.llm.attempt`, `maos.llm.step`).
   */
  attempt?: number;
  step?: number;
  /** Opt-in content: the request messages and system instructions. */
  inputMessages?: unknown;
  systemInstructions?: unknown;
}

export interface ChatEnd {
  responseModel?: string;
  responseId?: string;
  finishReasons?: string[];
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheCreationTokens?: number;
  /** Opt-in content: the response messages. */
  outputMessages?: unknown;
}

/** Span helpers; every `start*` returns a started span the caller ends (or hands to `withSpan`). */
export interface GenAiTracer {
  startWorkflow(input: { workflowName: string; conversationId: string }, parent?: Context): Span;
  startAgent(
    input: { agentName: string; agentId?: string; provider: string; model?: string; conversationId?: string },
    parent?: Context,
  ): Span;
  startPlan(
    input: { agentName: string; provider: string; model?: string; conversationId?: string },
    parent?: Context,
  ): Span;
  startChat(input: ChatStart, parent?: Context): Span;
  endChat(span: Span, result: ChatEnd): void;
  startTool(
    input: {
      toolName: string;
      toolCallId?: string;
      toolType?: 'function' | 'extension' | 'datastore';
      arguments?: unknown;
    },
    parent?: Context,
  ): Span;
  /** Records the tool result (content only when opted in); `isError` marks the span failed. */
  endTool(span: Span, result: { isError?: boolean; output?: unknown }): void;
}

function defined(attributes: Record<string, string | number | string[] | undefined>): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}

function toJson(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Creates the GenAI span helpers. */
export function createGenAiTracer(options: GenAiTracerOptions): GenAiTracer {
  const { tracer, captureMessageContent } = options;
  const start = (name: string, kind: SpanKind, attributes: Attributes, parent?: Context) =>
    tracer.startSpan(name, { kind, attributes }, parent ?? context.active());
  return {
    startWorkflow: (input, parent) =>
      start(
        `invoke_workflow ${input.workflowName}`,
        SpanKind.INTERNAL,
        defined({
          'gen_ai.operation.name': 'invoke_workflow',
          'gen_ai.provider.name': MAOS_PROVIDER,
          'gen_ai.workflow.name': input.workflowName,
          'gen_ai.conversation.id': input.conversationId,
        }),
        parent,
      ),
    startAgent: (input, parent) =>
      start(
        `invoke_agent ${input.agentName}`,
        // In-process agents are INTERNAL; the model calls below them are CLIENT spans.
        SpanKind.INTERNAL,
        defined({
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.provider.name': input.provider,
          'gen_ai.agent.name': input.agentName,
          'gen_ai.agent.id': input.agentId,
          'gen_ai.request.model': input.model,
          'gen_ai.conversation.id': input.conversationId,
        }),
        parent,
      ),
    startPlan: (input, parent) =>
      start(
        `plan ${input.agentName}`,
        SpanKind.INTERNAL,
        defined({
          'gen_ai.operation.name': 'plan',
          'gen_ai.provider.name': input.provider,
          'gen_ai.agent.name': input.agentName,
          'gen_ai.request.model': input.model,
          'gen_ai.conversation.id': input.conversationId,
        }),
        parent,
      ),
    startChat(input, parent) {
      const operation = input.operation ?? 'chat';
      const attributes = defined({
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': input.provider,
        'gen_ai.request.model': input.model,
        'gen_ai.request.max_tokens': input.maxTokens,
        'gen_ai.request.temperature': input.temperature,
        'gen_ai.conversation.id': input.conversationId,
        'server.address': input.serverAddress,
        'server.port': input.serverPort,
        'maos.llm.attempt': input.attempt,
        'maos.llm.step': input.step,
      });
      if (captureMessageContent) {
        if (input.inputMessages !== undefined)
          attributes['gen_ai.input.messages'] = toJson(input.inputMessages);
        if (input.systemInstructions !== undefined) {
          attributes['gen_ai.system_instructions'] = toJson(input.systemInstructions);
        }
      }
      return start(`${operation} ${input.model}`, SpanKind.CLIENT, attributes, parent);
    },
    endChat(span, result) {
      span.setAttributes(
        defined({
          'gen_ai.response.model': result.responseModel,
          'gen_ai.response.id': result.responseId,
          'gen_ai.response.finish_reasons': result.finishReasons,
          'gen_ai.usage.input_tokens': result.inputTokens,
          'gen_ai.usage.output_tokens': result.outputTokens,
          'gen_ai.usage.cache_read.input_tokens': result.cacheReadTokens,
          'gen_ai.usage.cache_creation.input_tokens': result.cacheCreationTokens,
        }),
      );
      if (captureMessageContent && result.outputMessages !== undefined) {
        span.setAttribute('gen_ai.output.messages', toJson(result.outputMessages));
      }
    },
    startTool(input, parent) {
      const attributes = defined({
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.provider.name': MAOS_PROVIDER,
        'gen_ai.tool.name': input.toolName,
        'gen_ai.tool.call.id': input.toolCallId,
        'gen_ai.tool.type': input.toolType ?? 'function',
      });
      if (captureMessageContent && input.arguments !== undefined) {
        attributes['gen_ai.tool.call.arguments'] = toJson(input.arguments);
      }
      return start(`execute_tool ${input.toolName}`, SpanKind.INTERNAL, attributes, parent);
    },
    endTool(span, result) {
      if (captureMessageContent && result.output !== undefined) {
        span.setAttribute('gen_ai.tool.call.result', toJson(result.output));
      }
      if (result.isError) {
        span.setAttribute('error.type', 'tool_error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'The tool reported an error' });
      }
    },
  };
}
