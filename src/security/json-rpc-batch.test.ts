import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auditedCallsOfBatch, countBatchRequests } from './json-rpc-batch.ts';

const call = (id: number, name: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});
const toolsList = { jsonrpc: '2.0', id: 9, method: 'tools/list' };
const notification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } };
const response = { jsonrpc: '2.0', id: 'srv-1', result: {} };

describe('JSON-RPC batches', () => {
  test('requests are charged; notifications and responses are not', () => {
    assert.equal(countBatchRequests([call(1, 'a'), toolsList, notification, response]), 2);
    assert.equal(countBatchRequests([notification, response, { jsonrpc: '2.0', id: 2, error: {} }]), 0);
    // Whatever is not a notification or a response counts (the server must answer or refuse it).
    assert.equal(countBatchRequests([1, null, 'x', [], { id: 3 }]), 5);
  });

  test('each message is recorded as if posted alone: tool calls named, reads none', () => {
    assert.deepEqual(
      auditedCallsOfBatch([call(1, 'orchestrate'), toolsList, call(2, 'cancel_session')], false),
      [
        { method: 'tools/call', tool: 'orchestrate' },
        { method: 'tools/call', tool: 'cancel_session' },
      ],
    );
    assert.deepEqual(auditedCallsOfBatch([toolsList, notification], false), []);
    // A route that records its tool calls itself gets none from the security layer.
    assert.deepEqual(auditedCallsOfBatch([call(1, 'orchestrate'), toolsList], true), []);
  });

  test('messages that are not calls get the one request record, not one each', () => {
    assert.deepEqual(auditedCallsOfBatch([response, response, toolsList], true), [null]);
    assert.deepEqual(auditedCallsOfBatch([call(1, 'orchestrate'), 'junk', 7], false), [
      { method: 'tools/call', tool: 'orchestrate' },
      null,
    ]);
    // A tools/call without an id is a notification: nothing runs, nothing is charged or recorded.
    const { id: _id, ...unanswered } = call(1, 'orchestrate');
    assert.deepEqual(auditedCallsOfBatch([unanswered], false), []);
  });
});
