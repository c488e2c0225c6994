// Calls every metrics recorder once or twice, with allowed values and with values the label
// guard must bound, so tests can scrape a registry where every metric has samples.
import type { Metrics } from '../../src/observability/metrics.ts';

/** Calls every recorder, with allowed values and with values that must be bounded. */
export function populateAllMetrics(metrics: Metrics, dataDir: string): void {
  metrics.setSources({
    queueCounts: async () => ({ ready: 3, leased: 1, running: 2 }),
    sessionCounts: async () => ({ running: 2, completed: 5 }),
    readiness: async () => ({ database: true, migrations: true, worker: false, shutdown: true }),
    dataDir,
    pendingWebhookDeliveries: async () => 2,
    listenConnected: () => true,
  });
  metrics.observeHttpRequest('GET', '/v1/sessions/:id', 200, 0.012);
  metrics.observeHttpRequest('BREW', '__unknown__', 404, 0.001);
  metrics.observeHttpRequest('post', '/v1/sessions', 201, 0.2);
  metrics.trackInFlight(1);
  metrics.recordError('SESSION_NOT_FOUND');
  metrics.recordError('NOT_A_CODE');
  metrics.recordSessionStarted();
  metrics.recordSessionFinished('completed');
  metrics.recordTaskFinished({ runtime: 'llm', role: 'engineer' }, 'succeeded', 12.5);
  metrics.recordTaskFinished({ runtime: 'command', role: 'qa' }, 'retried', 1);
  metrics.recordTaskQueueWait({ runtime: 'llm', role: 'engineer' }, 0.3);
  metrics.recordLeaseExpired();
  metrics.recordTaskRetry();
  metrics.setWorkerSlots(3, 8);
  metrics.recordOutputBatchFallback();
  metrics.recordOutputFlushFailure();
  metrics.recordLlmCall({
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    operation: 'chat',
    durationSeconds: 2.1,
    inputTokens: 1200,
    outputTokens: 300,
    costUsd: 0.0081,
  });
  metrics.recordLlmCall({
    provider: 'openai',
    model: 'gpt-4.1-mini',
    operation: 'chat',
    durationSeconds: 30,
    errorType: 'timeout',
  });
  metrics.recordLlmCall({
    provider: 'Bad Provider!',
    model: 'x',
    operation: 'weird',
    durationSeconds: 1,
    errorType: 'kaboom',
  });
  metrics.recordProviderError('anthropic', 'rate_limited');
  metrics.setCircuitState('anthropic', 'open');
  metrics.recordCacheResult('anthropic', 'hit');
  metrics.recordCacheResult('anthropic', 'miss');
  metrics.recordAgentMessage('claim_lost');
  metrics.trackSseConnection(1);
  metrics.recordSseEventsSent(4);
  metrics.recordSseStreamDropped();
  metrics.recordMcpStreamDropped();
  metrics.recordMcpRequest('tools/call', 'success');
  metrics.recordMcpRequest('tools/evil', 'error');
  metrics.recordMcpOperation({
    method: 'tools/call',
    toolName: 'orchestrate',
    protocolVersion: '2025-06-18',
    networkTransport: 'tcp',
    durationSeconds: 0.3,
  });
  metrics.recordMcpOperation({
    method: 'tools/evil',
    toolName: 'made_up',
    errorType: '-32601',
    rpcStatusCode: '-32601',
    protocolVersion: '1999-01-01',
    networkTransport: 'pipe',
    durationSeconds: 0.01,
  });
  metrics.recordRateLimitRejection('requests');
  metrics.recordBudgetRejection('session');
  metrics.recordAuthFailure('expired_token');
  metrics.recordAuthFailure('user alice@example.com');
  metrics.recordAuditRecordWritten('success');
  metrics.recordRetentionDeleted('events', 1000);
  metrics.recordStoreEndedConnection('resent');
  metrics.recordStoreIdleConnectionDiscarded();
  metrics.recordWorkspacesRemoved(2);
  metrics.recordOrphanedRunnersKilled(1);
  metrics.recordReplicaDirectoriesRemoved(1);
  metrics.setTlsCertificateExpiry(new Date('2027-01-01T00:00:00Z'));
  metrics.recordTlsReloadFailure();
  metrics.recordWebhookAttempt('session.completed', 'delivered', 0.08);
  metrics.recordWebhookAttempt('session.awaiting_approval', 'retried', 10);
  metrics.recordWebhookAttempt('session.unknown', 'failed', 0.2);
  metrics.recordWebhookDisabled('gone');
}
