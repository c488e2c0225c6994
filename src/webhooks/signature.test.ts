// The signature checked byte for byte against the Standard Webhooks specification's published test
// vector (secret, message id, timestamp, body → the `webhook-signature` value), so that a receiver
// can verify deliveries with any of that specification's libraries; and the shape of new secrets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateWebhookSecret, secretKey, signatureHeaders } from './signature.ts';

const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

test('the Standard Webhooks test vector signs to the published signature', () => {
  assert.deepEqual(signatureHeaders(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), {
    'webhook-id': SPEC_ID,
    'webhook-timestamp': '1614265330',
    'webhook-signature': SPEC_SIGNATURE,
  });
});

test('during a rotation: one entry per secret, space-separated, the current secret first', () => {
  const other = generateWebhookSecret();
  const both = signatureHeaders([other, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
  const [first, second, ...rest] = both['webhook-signature'].split(' ');
  assert.deepEqual(rest, []);
  assert.equal(first, signatureHeaders(other, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)['webhook-signature']);
  assert.equal(second, SPEC_SIGNATURE);
});

test('a new secret is whsec_ and the base64 of 32 random bytes, its key those bytes', () => {
  const secret = generateWebhookSecret();
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(secretKey(secret).length, 32);
  assert.notEqual(generateWebhookSecret(), secret);
});
