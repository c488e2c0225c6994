// The ordered list of schema migrations, compiled into the code (no files read at run time).
// Append new migrations at the END with the next number; never rename, reorder or edit a shipped one.
import type { Migration } from 'kysely/migration';
import * as llm from '../../agents/providers/migration-0003-llm.ts';
import * as sessionSettings from '../../engine/migration-0004-session-settings.ts';
import * as mcpStreamEvents from '../../mcp/migration-0006-mcp-stream-events.ts';
import * as security from '../../security/migration-0002-security.ts';
import * as foundation from './0001-foundation.ts';
import * as sessionTrace from './0005-session-trace.ts';
import * as rateLimitsRetention from './0008-rate-limits-retention.ts';
import * as messageDelivery from './0009-message-delivery.ts';
import * as taskAgentIndex from './0010-task-agent-index.ts';
import * as taskUnsettledUsage from './0011-task-unsettled-usage.ts';
import * as taskModelUsage from './0012-task-model-usage.ts';
import * as tenantUsageDays from './0013-tenant-usage-days.ts';
import * as idempotencyKeySessionIndex from './0014-idempotency-key-session-index.ts';
import * as webhooks from './0015-webhooks.ts';
import * as webhookDeliverySessionIndex from './0016-webhook-delivery-session-index.ts';
import * as deletedSessions from './0017-deleted-sessions.ts';
import * as webhookSecretRotation from './0018-webhook-secret-rotation.ts';
import * as webhookAutoDisable from './0019-webhook-auto-disable.ts';
import * as sessionRetry from './0020-session-retry.ts';
import * as taskClaimedTenantIndex from './0021-task-claimed-tenant-index.ts';
import * as auditCheckpointTree from './0022-audit-checkpoint-tree.ts';
import * as sessionRequestedBudget from './0023-session-requested-budget.ts';
import * as mcpStreamRequiredPermissions from './0024-mcp-stream-required-permissions.ts';
import * as auditSubtrees from './0025-audit-subtrees.ts';
import * as tenantExportIndexes from './0026-tenant-export-indexes.ts';
import * as taskReadyTenantIndex from './0027-task-ready-tenant-index.ts';
import * as mcpStreamEventPositions from './0028-mcp-stream-event-positions.ts';
import * as auditFilterIndexes from './0029-audit-filter-indexes.ts';
import * as auditTargetTypeIndex from './0030-audit-target-type-index.ts';
import * as webhookClaimIndexes from './0031-webhook-claim-indexes.ts';
import * as taskUnappliedRunCharges from './0032-task-unapplied-run-charges.ts';
import * as sessionRetriesIndex from './0033-session-retries-index.ts';
import * as taskSessionPositionIndex from './0034-task-session-position-index.ts';

export interface NamedMigration {
  /** Sorts in apply order: `NNNN_snake_name`. */
  name: string;
  migration: Migration;
}

/** Every migration this build knows, oldest first. Other areas append theirs (0002_security, …). */
export const MIGRATIONS: NamedMigration[] = [
  { name: '0001_foundation', migration: foundation },
  { name: '0002_security', migration: security },
  { name: '0003_llm', migration: llm },
  { name: '0004_session_settings', migration: sessionSettings },
  { name: '0005_session_trace', migration: sessionTrace },
  { name: '0006_mcp_stream_events', migration: mcpStreamEvents },
  { name: '0008_rate_limits_retention', migration: rateLimitsRetention },
  { name: '0009_message_delivery', migration: messageDelivery },
  { name: '0010_task_agent_index', migration: taskAgentIndex },
  { name: '0011_task_unsettled_usage', migration: taskUnsettledUsage },
  { name: '0012_task_model_usage', migration: taskModelUsage },
  { name: '0013_tenant_usage_days', migration: tenantUsageDays },
  { name: '0014_idempotency_key_session_index', migration: idempotencyKeySessionIndex },
  { name: '0015_webhooks', migration: webhooks },
  { name: '0016_webhook_delivery_session_index', migration: webhookDeliverySessionIndex },
  { name: '0017_deleted_sessions', migration: deletedSessions },
  { name: '0018_webhook_secret_rotation', migration: webhookSecretRotation },
  { name: '0019_webhook_auto_disable', migration: webhookAutoDisable },
  { name: '0020_session_retry', migration: sessionRetry },
  { name: '0021_task_claimed_tenant_index', migration: taskClaimedTenantIndex },
  { name: '0022_audit_checkpoint_tree', migration: auditCheckpointTree },
  { name: '0023_session_requested_budget', migration: sessionRequestedBudget },
  { name: '0024_mcp_stream_required_permissions', migration: mcpStreamRequiredPermissions },
  { name: '0025_audit_subtrees', migration: auditSubtrees },
  { name: '0026_tenant_export_indexes', migration: tenantExportIndexes },
  { name: '0027_task_ready_tenant_index', migration: taskReadyTenantIndex },
  { name: '0028_mcp_stream_event_positions', migration: mcpStreamEventPositions },
  { name: '0029_audit_filter_indexes', migration: auditFilterIndexes },
  { name: '0030_audit_target_type_index', migration: auditTargetTypeIndex },
  { name: '0031_webhook_claim_indexes', migration: webhookClaimIndexes },
  { name: '0032_task_unapplied_run_charges', migration: taskUnappliedRunCharges },
  { name: '0033_session_retries_index', migration: sessionRetriesIndex },
  { name: '0034_task_session_position_index', migration: taskSessionPositionIndex },
];
