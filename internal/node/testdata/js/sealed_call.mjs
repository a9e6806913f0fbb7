// Node.js side of TestNodeJSCompatThroughNode (enclave_test.go): a browser-
// style client, WebCrypto and fetch only, that seals a JSON-RPC call in
// Passport's compatibility format to a running keymesh node, opens the
// node's sealed answer, and replays the request once.
//
//   in (one JSON line):  {"url": s, "spki": base64, "node": base64, "rpc": s, "auth": s, "scope": s}
//   out (one JSON line): {"status": n, "rpc": s, "replayStatus": n, "replay": {...}} or {"error": s}
import { createInterface } from "node:readline";
import { sealRequest, openResponse } from "../../../envelope/testdata/js/compat.mjs";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const req = JSON.parse((await lines.next()).value);
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

try {
  const method = JSON.parse(req.rpc).method;
  const fields = { rpc: enc.encode(req.rpc) };
  if (req.auth) fields.auth = enc.encode(req.auth);
  const { encryptedKey, body, pending } = await sealRequest(req.spki, { node: req.node, method, scope: req.scope, fields });
  const post = () => fetch(req.url + "/", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Encrypted-Key": encryptedKey },
    body: JSON.stringify(body),
  });
  const resp = await post();
  const sealed = await resp.json();
  const opened = await openResponse(pending, sealed);
  const replay = await post();
  console.log(JSON.stringify({
    status: resp.status,
    rpc: dec.decode(opened.rpc),
    sealedText: JSON.stringify(sealed),
    replayStatus: replay.status,
    replay: await replay.json(),
  }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e.stack || e) }));
}
process.exit(0);
