// The journal profile (bench/scenarios/journal.toml) for k6 users: the original gateway's
// k6-local-big run, pointed at this gateway's API.
//
// k6 cannot be installed on the machines this project is built on, so this file is not run in
// CI; the `bench load journal` command is the reference. A unit test of the bench crate
// (load::k6_port) checks that the stages, start rate, weights and probabilities below match
// the scenario file, so the two cannot drift apart silently.
//
//   k6 run -e GATEWAY_URL=http://127.0.0.1:3000 -e ADMIN_API_KEY=... bench/k6/journal.js
//
// Differences from the original script: agents get roles and policies of their own (as the
// scenario does) so that the seeded office-hours policies do not refuse the load; tokens
// outlive the 40-minute run; the per-agent rate limits of the gateway must be off
// (RATE_LIMIT_PER_AGENT=0 RATE_LIMIT_PER_AGENT_TOOL=0), as `bench load` sets them.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.GATEWAY_URL || 'http://127.0.0.1:3000';
const ADMIN = __ENV.ADMIN_API_KEY;

export const options = {
  scenarios: {
    journal: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      preAllocatedVUs: 100,
      maxVUs: 2000,
      stages: [
        { duration: '10m', target: 60 },
        { duration: '10m', target: 60 },
        { duration: '2m', target: 120 },
        { duration: '3m', target: 60 },
        { duration: '10m', target: 80 },
        { duration: '5m', target: 0 },
      ],
    },
  },
  thresholds: { http_req_failed: ['rate<0.01'] },
};

const WEIGHTS = { scraper: 60, enricher: 30, engager: 10 };
const CACHE_PROBE = 0.15;
const DENIAL_PROBE = 0.0333;

const AGENTS = [
  { key: 'scraper', name: 'k6_scraper', role: 'load_scraper', tools: ['serpapi', 'http_fetch'], permissions: ['read'], scopes: ['serpapi:search', 'http_fetch:get'] },
  { key: 'enricher', name: 'k6_enricher', role: 'load_enricher', tools: ['http_fetch', 'openai'], permissions: ['read'], scopes: ['http_fetch:get', 'openai:chat'] },
  { key: 'engager', name: 'k6_engager', role: 'load_engager', tools: ['gmail_send'], permissions: ['write'], scopes: ['gmail_send:send'] },
];

function admin(path, body) {
  const r = http.post(`${BASE}${path}`, JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN}` },
  });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${r.body}`);
  return r.json();
}

export function setup() {
  const tokens = {};
  const run = Date.now().toString(16);
  for (const a of AGENTS) {
    const agent = admin('/api/create-agent', { name: `${a.name}-${run}`, created_by: 'k6', role: a.role });
    admin('/api/policies', { name: `k6 ${a.key} ${run}`, agentId: agent.agent_id, spec: { scopes: a.scopes } });
    tokens[a.key] = admin('/api/generate-token', {
      agent_id: agent.agent_id, tools: a.tools, permissions: a.permissions, ttl_minutes: 60,
    }).agent_token;
  }
  return tokens;
}

function call(token, tool, action, params, expected) {
  const r = http.post(`${BASE}/api/proxy-request`,
    JSON.stringify({ agent_token: token, tool, action, params }),
    { headers: { 'Content-Type': 'application/json' }, timeout: '6s' });
  check(r, { [`${tool}.${action} ${expected}`]: (x) => x.status === expected });
}

export default function (tokens) {
  const x = Math.random() * (WEIGHTS.scraper + WEIGHTS.enricher + WEIGHTS.engager);
  if (x < WEIGHTS.scraper) {
    call(tokens.scraper, 'serpapi', 'search', { q: `k6 local ${Math.floor(Math.random() * 1e6)}`, engine: 'google' }, 200);
    if (Math.random() < CACHE_PROBE) {
      call(tokens.scraper, 'serpapi', 'search', { q: 'k6 cache probe', engine: 'google' }, 200);
    }
  } else if (x < WEIGHTS.scraper + WEIGHTS.enricher) {
    call(tokens.enricher, 'http_fetch', 'get', { url: 'https://example.com' }, 200);
    call(tokens.enricher, 'openai', 'chat', { model: 'gpt-4o-mini', input: 'summarize hello' }, 200);
  } else {
    call(tokens.engager, 'gmail_send', 'send', { to: 'sandbox@company.com', subject: 'k6 hello', text: 'hello' }, 200);
  }
  if (Math.random() < DENIAL_PROBE) {
    call(tokens.scraper, 'gmail_send', 'send', { to: 'sandbox@company.com', subject: 'k6 denial probe', text: 'should be refused' }, 403);
  }
}
