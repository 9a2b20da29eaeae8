import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jitter, needsRenewal, renewalAt, retryDelay } from '../../src/tls/acme/schedule.js';

const DAY = 86_400_000;

test('renewal is due with a third of the lifetime left, whatever the lifetime', () => {
  for (const days of [90, 45, 6]) {
    const nb = 1_000_000;
    const na = nb + days * DAY;
    assert.equal(renewalAt(nb, na), na - (days * DAY) / 3);
    assert.equal(needsRenewal({ notBefore: nb, notAfter: na }, renewalAt(nb, na) - 1), false);
    assert.equal(needsRenewal({ notBefore: nb, notAfter: na }, renewalAt(nb, na)), true);
    assert.equal(needsRenewal({ notBefore: nb, notAfter: na }, na + 1), true, 'expired');
  }
});

test('retries back off from a minute to six hours, with ±10% jitter, and honour a longer Retry-After', () => {
  const mid = () => 0.5;
  assert.equal(retryDelay(1, undefined, mid), 60_000);
  assert.equal(retryDelay(2, undefined, mid), 120_000);
  assert.equal(retryDelay(4, undefined, mid), 300_000);
  assert.equal(retryDelay(1000, undefined, mid), 6 * 3_600_000);
  for (let a = 1; a < 40; a++) assert.ok(retryDelay(a + 1, undefined, mid) >= retryDelay(a, undefined, mid), `monotonic at ${a}`);
  assert.equal(retryDelay(1, undefined, () => 0), 54_000);
  assert.equal(retryDelay(1, undefined, () => 1), 66_000);
  assert.equal(retryDelay(1, 7_200_000, mid), 7_200_000, 'Retry-After of 2 h wins over 1 min');
  assert.equal(retryDelay(25, 1000, mid), 6 * 3_600_000, 'a short Retry-After does not shorten the backoff');
  assert.equal(jitter(1000, () => 0), 900);
  assert.equal(jitter(1000, () => 1), 1100);
});
