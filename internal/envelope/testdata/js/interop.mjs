// Driver for the Go interop test (compat_node_test.go). Protocol, one JSON
// object per line:
//   in:  {"spki": base64, "node": base64, "method": s, "scope": s, "fields": {name: utf8 string}}
//   out: {"encryptedKey": s, "body": {...}}
//   in:  {"responses": [body, ...]}
//   out: {"results": [{"fields": {name: utf8 string}} | {"error": s}, ...]}
import { createInterface } from "node:readline";
import { sealRequest, openResponse } from "./compat.mjs";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => JSON.parse((await lines.next()).value);
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

const req = await next();
const fields = Object.fromEntries(Object.entries(req.fields).map(([k, v]) => [k, enc.encode(v)]));
const { encryptedKey, body, pending } = await sealRequest(req.spki, { node: req.node, method: req.method, scope: req.scope, fields });
console.log(JSON.stringify({ encryptedKey, body }));

const { responses } = await next();
const results = [];
for (const r of responses) {
  try {
    const f = await openResponse(pending, r);
    results.push({ fields: Object.fromEntries(Object.entries(f).map(([k, v]) => [k, dec.decode(v)])) });
  } catch (e) {
    results.push({ error: String(e.message || e) });
  }
}
console.log(JSON.stringify({ results }));
process.exit(0);
