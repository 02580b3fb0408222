// Runs the transpiled plugin (jco) on Node against one connection: every
// discovery list and the metrics the script names, printed as one JSON
// document in the same canonical form the Rust side builds from wasmtime's
// answers, so the two can be compared value for value.
//
//   node run.mjs OUT_DIR SCRIPT.json
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { allowOrigins, denied } from './guard.js';

const [outDir, scriptPath] = process.argv.slice(2);
const script = JSON.parse(readFileSync(scriptPath, 'utf8'));
allowOrigins(script.origins);
const plugin = await import(pathToFileURL(resolve(join(outDir, 'plugin.js'))).href);

const conn = {
  id: script.connection.id,
  settings: script.connection.settings.map(([key, value]) => ({ key, value })),
  credential: { tag: 'client-secret', val: script.connection.secret },
};

// A contract error arrives as a thrown ComponentError carrying the variant.
function attempt(call) {
  try {
    return { ok: call() };
  } catch (error) {
    if (error && error.payload !== undefined) return { error: error.payload.tag };
    throw error;
  }
}

function value(measured) {
  const v = measured.value;
  if (v === undefined) return null;
  return v.tag === 'number' ? v.val : v.val;
}

const info = plugin.describe();
const out = {
  describe: {
    id: info.id,
    name: info.name,
    settings: info.settings.map((s) => s.key),
    aggregations: info.aggregations,
  },
  apps: [],
  measurements: [],
};
const apps = attempt(() => plugin.discovery.listApps(conn));
for (const app of apps.ok ?? []) {
  const entities = plugin.discovery.listEntities(conn, app.id);
  out.apps.push({
    id: app.id,
    name: app.name,
    entities: entities.map((e) => e.logicalName),
  });
}
out.views = {};
out.columns = {};
for (const entity of script.entities) {
  const views = plugin.discovery.listViews(conn, entity, undefined);
  out.views[entity] = views.map((v) => [v.id, v.name, v.kind]);
  for (const view of views) {
    const columns = plugin.discovery.listColumns(conn, entity, { id: view.id, kind: view.kind });
    out.columns[view.id] = columns.map((c) => [c.name, c.columnType, c.aggregations]);
  }
}
for (const m of script.measurements) {
  const result = attempt(() => plugin.metrics.fetchAndAggregate(conn, {
    entity: m.entity,
    view: { id: m.view, kind: m.kind },
    column: m.column,
    aggregation: m.aggregation,
    currency: 'base',
  }, [], undefined));
  out.measurements.push(result.ok
    ? { value: value(result.ok), records: Number(result.ok.records) }
    : { error: result.error });
}
// A request the guard refused would show as a difference anyway; say which.
out.denied = denied;
process.stdout.write(JSON.stringify(out));
