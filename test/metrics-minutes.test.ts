// The per-minute history behind the dashboard's charts: the differences of
// the very counters /metrics prints, minute by minute, the last hour only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { RequestTraffic } from '../server/metrics/request-traffic.js';
import { HISTORY_MINUTES, MINUTE_MS, MinuteHistory } from '../server/metrics/minute-history.js';

function setup() {
  let clock = Date.UTC(2026, 11, 1, 12, 0, 10);
  const registry = new Registry();
  const traffic = new RequestTraffic(registry);
  const memory = new Map<string, number>();
  const history = new MinuteHistory(
    { totals: (id) => traffic.totals(id), tenantIds: () => traffic.tenantIds(), memory: (id) => memory.get(id), memoryOfAll: () => memory.entries() },
    () => clock,
  );
  const advance = (minutes: number) => {
    clock += minutes * MINUTE_MS;
    history.tick();
  };
  const hits = (tenant: string, status: number, n: number) => {
    for (let i = 0; i < n; i++) traffic.record(tenant, 'dynamic', status, 100, 0.001);
  };
  const counted = async (tenant: string) => {
    const m = await registry.getSingleMetric('tenantry_http_requests_total')!.get();
    return m.values.filter((v) => v.labels.tenant === tenant).reduce((a, v) => a + v.value, 0);
  };
  return { history, advance, hits, memory, counted, traffic };
}

test('each minute holds what the counters moved by in it; the running minute is live', async () => {
  const { history, advance, hits, memory, counted } = setup();
  hits('a', 200, 3);
  hits('a', 500, 2);
  memory.set('a', 5_000_000);
  advance(1);
  hits('a', 404, 1);
  advance(1);
  advance(1); // a quiet minute in between
  hits('a', 200, 4);
  memory.set('a', 7_000_000);
  const s = history.series('a');
  assert.equal(s.length, HISTORY_MINUTES);
  assert.deepEqual(s.slice(-4).map((m) => [m.requests, m.errors4xx, m.errors5xx, m.memoryBytes]), [
    [5, 0, 2, 5_000_000],
    [1, 1, 0, 5_000_000],
    [0, 0, 0, 5_000_000],
    [4, 0, 0, 7_000_000],
  ]);
  assert.equal(s[59]!.start, '2026-12-01T12:03:00.000Z');
  assert.equal(s.reduce((a, m) => a + m.requests, 0), await counted('a'), 'the window adds up to the counter');
  assert.deepEqual(history.series('b').map((m) => m.requests), new Array(60).fill(0), 'a tenant without traffic');
});

test('minutes older than an hour fall out; a deleted tenant starts again from nothing', () => {
  const { history, advance, hits, traffic } = setup();
  hits('a', 200, 10);
  advance(1);
  hits('a', 200, 1);
  advance(HISTORY_MINUTES - 1);
  assert.equal(history.series('a').reduce((a, m) => a + m.requests, 0), 1, 'the first minute is out of the window');
  advance(1);
  assert.equal(history.series('a').reduce((a, m) => a + m.requests, 0), 0);
  traffic.forget('a'); // as PlatformMetrics.forgetTenant does
  history.forget('a');
  hits('a', 200, 2); // a new tenant of the same id: its counters start at zero, and so does its history
  assert.deepEqual(history.series('a').map((m) => m.requests).filter(Boolean), [2]);
});
