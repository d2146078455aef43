// Checks docs/api/openapi.json against the running gateway. The gateway
// must serve that very file at /openapi.json. The description must list
// every route of services/gateway/gw_routes.c with its methods and modes,
// and each path's OPTIONS Allow header must match. Runs under
// interop_stack.py, which points CERROJO_GATEWAY_OPENAPI_FILE at the
// repository's file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { http } from './cerrojo_client.mjs';

const SOURCE_DIR = process.env.CJ_SOURCE_DIR ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FILE = path.join(SOURCE_DIR, 'docs/api/openapi.json');
const TABLE = path.join(SOURCE_DIR, 'services/gateway/gw_routes.c');
const spec = JSON.parse(readFileSync(FILE, 'utf8'));

// Returns [{ path, method, modes }] from the route table's initializers.
function routeTable() {
  const source = readFileSync(TABLE, 'utf8');
  const routes = [];
  const entry = /\{\s*\.path = "([^"]+)",\s*\.method = GW_METHOD_(\w+),[^{}]*?\.modes = ([A-Z_ |]+?)[,}]/gs;
  for (const m of source.matchAll(entry)) {
    routes.push({ path: m[1], method: m[2].toLowerCase(), modes: m[3].trim() });
  }
  // Routes that exist only for `make bench` are off unless a dev-profile
  // setting enables them, so they are not part of the public API.
  const benchOnly = new Set(
    [...source.matchAll(/\.path = "([^"]+)"(?:(?!\.path = ).)*?\.bench_only = true/gs)]
      .map((m) => m[1]));
  return routes.filter((r) => !benchOnly.has(r.path));
}

// Number of route table entries that belong in the public API.
function publicEntries() {
  const source = readFileSync(TABLE, 'utf8');
  const all = source.match(/\.path = "/g).length;
  const bench = (source.match(/\.bench_only = true/g) || []).length;
  return all - bench;
}

// The security requirement each route mode maps to in the description.
function expectedSecurity(modes) {
  switch (modes) {
    case 'GW_MODE_PLAIN': return [];
    case 'GW_MODE_STATELESS': return [{}];
    case 'GW_MODE_STATEFUL': return [{ session: [] }];
    case 'GW_SEALED': return [{}, { session: [] }];
    default: throw new Error(`unknown route mode ${modes}`);
  }
}

test('gateway serves the repository file', async () => {
  const r = await http('GET', '/openapi.json');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, readFileSync(FILE, 'utf8'));
  assert.equal(r.json.openapi, '3.1.0');
});

test('description lists every gateway route', () => {
  const routes = routeTable();
  const entries = publicEntries();
  assert.equal(routes.length, entries, `routes parsed from ${TABLE}`);
  for (const route of routes) {
    const op = spec.paths[route.path]?.[route.method];
    assert.ok(op, `${route.method.toUpperCase()} ${route.path} is missing`);
    assert.deepEqual(op.security, expectedSecurity(route.modes),
                     `${route.method.toUpperCase()} ${route.path} modes`);
  }
  // And nothing the gateway does not serve, apart from the admin port.
  const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const method of Object.keys(item)) {
      if (p === '/metrics') continue;
      assert.ok(served.has(`${method} ${p}`), `${method} ${p} is not served`);
    }
  }
});

test('Allow header matches each path', async () => {
  for (const [p, item] of Object.entries(spec.paths)) {
    if (p === '/metrics') continue;
    const r = await http('OPTIONS', p);
    assert.equal(r.status, 204, `${p}: ${r.text}`);
    const allowed = r.headers.get('allow').split(', ').sort();
    const expected = Object.keys(item).map((m) => m.toUpperCase());
    const plainGet = item.get && item.get.security.length === 0;
    if (plainGet) expected.push('HEAD');
    expected.push('OPTIONS');
    assert.deepEqual(allowed, expected.sort(), p);
  }
});
