// keymesh passkey page: WebAuthn registration and authentication against
// a node's JSON-RPC API. An app serves this bundle from its own origin
// (the WebAuthn origin its scope lists) and names the node endpoint in
// <meta name="keymesh-node">; empty means "/" of the page's origin (the
// node's own /login page, for development). See package internal/auth/web.
"use strict";

// nodeEndpoint is the URL the page posts its JSON-RPC calls to. It comes
// from the page's own markup only (never from the query string: a link
// must not be able to send the user's ceremonies to another node).
const nodeEndpoint = (() => {
  const m = document.querySelector('meta[name="keymesh-node"]');
  const v = m ? m.getAttribute("content").trim() : "";
  return new URL(v || "/", location.href).href;
})();

const b64u = {
  encode(buf) {
    const bytes = new Uint8Array(buf);
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(str) {
    const s = atob(str.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((str.length + 3) % 4));
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  },
};

// The sim platform keys (hex Ed25519, space-separated) the node's
// attestation must be signed by, and the node builds (hex measurements)
// it may run, from the page's own markup (keymesh login-bundle writes
// them). With a platform key the page seals every call to the node's
// attested key (a production node accepts nothing else); without one it
// speaks plain JSON-RPC, which only development nodes accept.
function metaList(name) {
  const m = document.querySelector(`meta[name="${name}"]`);
  const v = m ? m.getAttribute("content").trim() : "";
  return v ? v.split(/\s+/).map((x) => x.toLowerCase()) : [];
}
const simRoots = metaList("keymesh-sim-root");
const measurements = metaList("keymesh-measurement");

let rpcID = 0;
// rpc calls method with params on the node, for scope (named in the
// query string: the node grants CORS to that scope's origins only, and
// a sealed call is bound to it).
async function rpc(method, params, scope) {
  const body = JSON.stringify({ jsonrpc: "2.0", id: ++rpcID, method, params });
  const url = new URL(nodeEndpoint);
  url.searchParams.set("scope", scope);
  let result;
  if (simRoots.length > 0) {
    result = await sealedCall(url, method, scope, body);
  } else {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    result = await resp.json();
  }
  if (result.error) throw new Error(`${method}: ${result.error.message} (code ${result.error.code})`);
  return result.result;
}

// ---- Sealed calls (internal/envelope, Passport's compatibility mode) ----
//
// WebCrypto has RSA-OAEP and AES-GCM but no X-Wing (ML-KEM-768 + X25519),
// the KEM of the node's HPKE key, so the page seals in compatibility
// mode (internal/envelope/compat.go; the approach of
// internal/envelope/testdata/js/compat.mjs):
//
//   X-Encrypted-Key: base64(RSA-OAEP-SHA256(base64(aesKey)))
//   each field:      base64(iv12 ‖ AES-256-GCM ciphertext ‖ tag16)
//   field "_keymesh": "KMCQ\x02" ‖ u64 ms ‖ nonce16 ‖ node id (32) ‖
//                     u8 len ‖ method ‖ u8 len ‖ scope ‖ SHA-256 of the
//                     other fields
//
// to the node's RSA-3072 key, after verifying the node's attestation
// (internal/attest) against the sim platform key pinned in the page. This
// protects the call from everything between the page and the node's
// enclave, but not against a quantum adversary (RSA), unlike the SDK's
// HPKE mode. Only the sim backend's quotes are verified here: a hardware
// quote (nitro, sev-snp, tdx) is refused, not trusted.

const b64std = {
  encode(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  },
  decode(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  },
};
const META_FIELD = "_keymesh";

// reader decodes the canonical encodings of internal/attest and
// internal/enclave strictly (big-endian lengths, no trailing bytes).
function reader(b, what) {
  let o = 0;
  const fail = () => { throw new Error(`the node's attestation: malformed ${what}`); };
  return {
    bytes(n) { if (o + n > b.length) fail(); const v = b.slice(o, o + n); o += n; return v; },
    u8() { return this.bytes(1)[0]; },
    u16() { const v = this.bytes(2); return (v[0] << 8) | v[1]; },
    u32() { const v = this.bytes(4); return ((v[0] << 24) >>> 0) + (v[1] << 16) + (v[2] << 8) + v[3]; },
    u64() { const v = this.bytes(8); let n = 0n; for (const x of v) n = (n << 8n) | BigInt(x); return n; },
    magic(m) { if (!equalBytes(this.bytes(m.length), utf8(m))) fail(); },
    get offset() { return o; },
    done() { if (o !== b.length) fail(); },
  };
}

let attestation = null; // {rsa, node, offset, expires}

// attest fetches GET /attestation with a fresh challenge and verifies it
// as attest.Verify does for a sim quote: the quote is signed by a pinned
// platform key (sim.VerifyQuote), reports a pinned measurement (if any is
// pinned), its report data covers the keys and the freshness, which was
// made for this challenge and is not stale. It returns the node's RSA key,
// identity and clock offset; nothing is sent to the node before this
// succeeds.
async function attest(scope) {
  if (attestation && Date.now() + 30000 < attestation.expires) return attestation;
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const url = new URL("attestation", nodeEndpoint);
  url.searchParams.set("challenge", hex(challenge));
  url.searchParams.set("scope", scope);
  const sent = Date.now();
  const resp = await fetch(url, { cache: "no-store" });
  if (!resp.ok) throw new Error(`the node's attestation: HTTP ${resp.status}`);
  const doc = await resp.json();
  const received = Date.now();
  const keysB = b64std.decode(doc.keys), freshB = b64std.decode(doc.fresh), quoteB = b64std.decode(doc.quote);

  // enclave.Quote: magic ‖ u8 len ‖ platform ‖ flags ‖ measurement (32) ‖
  // report data (64) ‖ u32 len ‖ evidence.
  const q = reader(quoteB, "quote");
  q.magic("KMQUOTE\x01");
  const platform = new TextDecoder().decode(q.bytes(q.u8()));
  const flags = q.u8();
  const measurement = q.bytes(32);
  const reportData = q.bytes(64);
  const signedEnd = q.offset;
  const evidence = q.bytes(q.u32());
  q.done();
  if (platform !== "sim") {
    throw new Error(`the node runs on ${platform} hardware, whose attestation this page cannot verify in JavaScript (only the sim backend's): refusing to send anything`);
  }
  if (flags !== 1 || evidence.length !== 96) throw new Error("the node's attestation: not a sim quote");
  const named = hex(evidence.slice(0, 32));
  if (!simRoots.includes(named)) {
    throw new Error(`the node's attestation is not signed by the platform key pinned in this page (it names ${named.slice(0, 16)}…): refusing to send anything`);
  }
  const root = await crypto.subtle.importKey("raw", evidence.slice(0, 32), { name: "Ed25519" }, false, ["verify"]);
  const signed = concat(utf8("keymesh sim quote v1\0"), quoteB.slice(0, signedEnd));
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, root, evidence.slice(32), signed))) {
    throw new Error("the node's attestation: the quote's signature does not verify");
  }
  if (measurements.length > 0 && !measurements.includes(hex(measurement))) {
    throw new Error(`the node runs build ${hex(measurement)}, not one pinned in this page: refusing to send anything`);
  }
  // attest.ReportData: SHA-512("keymesh attestation v2\0" ‖ u32 len ‖ keys ‖ fresh).
  const want = new Uint8Array(await crypto.subtle.digest("SHA-512", concat(utf8("keymesh attestation v2\0"), u32(keysB.length), keysB, freshB)));
  if (!equalBytes(want, reportData)) throw new Error("the node's attestation: the quote does not cover its keys");

  // attest.Freshness: magic ‖ u64 issued ms ‖ u64 expires ms ‖ u8 len ‖ challenge.
  const f = reader(freshB, "freshness");
  f.magic("KMFRESH\x01");
  const issued = Number(f.u64()), expires = Number(f.u64());
  const fch = f.bytes(f.u8());
  f.done();
  if (!equalBytes(fch, challenge)) throw new Error("the node's attestation was not made for this page's challenge");
  const now = Date.now();
  if (now >= expires || now - issued > 10 * 60000 || issued > now + 2 * 60000) {
    throw new Error("the node's attestation is not fresh (check the clocks)");
  }

  // attest.Keys: magic ‖ u16 kem ‖ (u16 len ‖ key) for HPKE, RSA, identity.
  const k = reader(keysB, "keys");
  k.magic("KMKEYS\x01");
  k.u16();
  k.bytes(k.u16());
  const rsaSPKI = k.bytes(k.u16());
  const identity = k.bytes(k.u16());
  k.done();
  if (rsaSPKI.length === 0 || identity.length !== 32) throw new Error("the node's attestation has no RSA key or identity");
  const rsa = await crypto.subtle.importKey("spki", rsaSPKI, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  if (rsa.algorithm.modulusLength !== 3072) throw new Error("the node's attested RSA key is not RSA-3072");
  // The node's clock: it made the document between sent and received.
  attestation = { rsa, node: identity, offset: issued - (sent + (received - sent) / 2), expires };
  return attestation;
}

// fieldDigest is SHA-256 over every field but META_FIELD, sorted by name,
// each as u32 len ‖ name ‖ u32 len ‖ sealed value (the base64 text).
async function fieldDigest(body) {
  const parts = [];
  for (const n of Object.keys(body).filter((x) => x !== META_FIELD).sort()) {
    const nb = utf8(n), vb = utf8(body[n]);
    parts.push(u32(nb.length), nb, u32(vb.length), vb);
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

async function sealField(key, plaintext) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  return b64std.encode(concat(iv, new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plaintext))));
}

async function openField(key, value) {
  const raw = b64std.decode(value);
  if (raw.length < 28) throw new Error("sealed field too short");
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12) }, key, raw.slice(12)));
}

function shortString(s) {
  const b = utf8(s);
  if (b.length > 255) throw new Error("method or scope longer than 255 bytes");
  return concat([b.length], b);
}

// sealedCall posts body sealed to the attested node and returns the
// opened JSON-RPC response. An answer that does not open is not the
// node's enclave's: only its error code is shown, marked unauthenticated.
async function sealedCall(url, method, scope, body) {
  const a = await attest(scope);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, a.rsa, utf8(b64std.encode(raw))));
  raw.fill(0);
  const fields = { rpc: await sealField(key, utf8(body)) };
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(Math.round(Date.now() + a.offset)));
  const meta = concat(utf8("KMCQ\x02"), ts, nonce, a.node, shortString(method), shortString(scope), await fieldDigest(fields));
  fields[META_FIELD] = await sealField(key, meta);
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Encrypted-Key": b64std.encode(wrapped) },
    body: JSON.stringify(fields),
  });
  const out = await resp.json();
  if (!(META_FIELD in out)) {
    attestation = null; // attest again next time (the node's keys may have changed)
    const e = out.error || {};
    throw new Error(`${method}: the node refused the sealed request (code ${e.code}; unauthenticated answer)`);
  }
  const m = await openField(key, out[META_FIELD]);
  if (!equalBytes(m, concat(utf8("KMCR\x01"), nonce, await fieldDigest(out)))) {
    throw new Error(`${method}: the answer is not for this request, or was changed`);
  }
  for (const n of Object.keys(out)) {
    if (n !== META_FIELD && n !== "rpc" && n !== "status") throw new Error(`${method}: unknown sealed field ${n}`);
  }
  const status = Number(new TextDecoder().decode(await openField(key, out.status)));
  if (status !== resp.status) throw new Error(`${method}: the HTTP status differs from the sealed one`);
  return JSON.parse(new TextDecoder().decode(await openField(key, out.rpc)));
}

// credentialJSON is the WebAuthn Level 3 JSON form of a PublicKeyCredential.
function credentialJSON(c) {
  const r = c.response;
  const out = {
    id: c.id, rawId: b64u.encode(c.rawId), type: c.type,
    clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    response: { clientDataJSON: b64u.encode(r.clientDataJSON) },
  };
  if (c.authenticatorAttachment) out.authenticatorAttachment = c.authenticatorAttachment;
  if (r.attestationObject) {
    out.response.attestationObject = b64u.encode(r.attestationObject);
    if (r.getTransports) out.response.transports = r.getTransports();
  } else {
    out.response.authenticatorData = b64u.encode(r.authenticatorData);
    out.response.signature = b64u.encode(r.signature);
    if (r.userHandle) out.response.userHandle = b64u.encode(r.userHandle);
  }
  return out;
}

function status(state, text) {
  const el = document.getElementById("status");
  el.dataset.state = state;
  el.textContent = text;
}

function fields() {
  const scope = document.getElementById("scope").value.trim();
  const account = document.getElementById("account").value.trim();
  if (!scope || !account) throw new Error("scope and account are required");
  return { scope, account };
}

// Canonical encoding helpers (internal/record): u32 big-endian lengths.
function u32(n) { return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]; }
function concat(...parts) {
  const out = [];
  for (const p of parts) for (const b of p) out.push(b);
  return new Uint8Array(out);
}
function varBytes(b) { return concat(u32(b.length), b); }
const utf8 = (s) => new TextEncoder().encode(s);
function equalBytes(a, b) { return a.length === b.length && a.every((v, i) => v === b[i]); }

// lowS puts an ECDSA P-256 r‖s signature's s in the lower half of the
// group order (the nodes accept only that form, so that a signature has
// one encoding).
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
function lowS(sig) {
  let v = 0n;
  for (const b of sig.slice(32)) v = (v << 8n) | BigInt(b);
  if (v > P256_N / 2n) {
    v = P256_N - v;
    for (let i = 63; i >= 32; i--) { sig[i] = Number(v & 0xffn); v >>= 8n; }
  }
  return sig;
}

const hex = (b) => Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");

async function register() {
  const scope = document.getElementById("scope").value.trim();
  if (!scope) throw new Error("scope is required");
  status("busy", "Creating a passkey…");
  // The registration key, made here for this registration alone and never
  // exported: the payload, and so the challenge, commit to it, and it
  // signs the attestation, so that no node that sees the challenge can
  // register a passkey of its own under it (record.AuthPasskeyCreateKeyed).
  const regKey = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const regPub = new Uint8Array(await crypto.subtle.exportKey("raw", regKey.publicKey));
  // The account id is the registration key's (record.DerivedAccountID):
  // "rk-" ‖ hex of the first 20 bytes of SHA-256(String("keymesh/account-id/v1")
  // ‖ alg P-256 ‖ key). Only this key signs a registration for it, so no
  // one can take it first; a chosen id (a name) is the developer's to give.
  const idHash = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(varBytes(utf8("keymesh/account-id/v1")), [1], varBytes(regPub))));
  const account = "rk-" + hex(idHash.slice(0, 20));
  const init = await rpc("keymesh_initiateRegistration", { scope, account, registrationKey: "p256:" + b64u.encode(regPub) }, scope);
  // The payload must be this account's and end with this key and the
  // scope config's seq (marker 2 ‖ u64), and the challenge must be
  // SHA-256 of its record signing message.
  const payload = b64u.decode(init.payload);
  const head = concat(varBytes(utf8(scope)), varBytes(utf8(account)));
  const tail = concat([1, 1], varBytes(regPub)); // present ‖ alg P-256 ‖ key
  const end = payload.length - 9;
  if (!equalBytes(payload.slice(0, head.length), head) || payload[end] !== 2 || !equalBytes(payload.slice(end - tail.length, end), tail)) {
    throw new Error("the node's registration payload is not for this account and key");
  }
  const signing = concat(varBytes(utf8("keymesh/record/v1")), [3], varBytes(payload)); // kind 3: account.register
  const challenge = new Uint8Array(await crypto.subtle.digest("SHA-256", signing));
  if (b64u.encode(challenge) !== init.challenge) throw new Error("the node's challenge does not commit to its payload");
  const cred = await navigator.credentials.create({
    publicKey: {
      challenge: b64u.decode(init.challenge),
      rp: { id: init.rpId, name: "keymesh" },
      user: { id: b64u.decode(init.userId), name: account, displayName: account },
      pubKeyCredParams: [
        { type: "public-key", alg: -7 },   // ES256
        { type: "public-key", alg: -8 },   // EdDSA
        { type: "public-key", alg: -257 }, // RS256
      ],
      authenticatorSelection: { residentKey: "preferred", userVerification: "required" },
      attestation: "none",
      timeout: init.timeout,
    },
  });
  const credential = credentialJSON(cred);
  // Sign the exact JSON the node receives (JSON.stringify is the same
  // inside the request body).
  const msg = concat(varBytes(utf8("keymesh/registration/v1")), varBytes(challenge), varBytes(utf8(JSON.stringify(credential))));
  const sig = lowS(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, regKey.privateKey, msg)));
  const done = await rpc("keymesh_completeRegistration", { challengeId: init.challengeId, credential, signature: b64u.encode(sig) }, scope);
  if (done.account !== account) throw new Error("the node registered another account id");
  document.getElementById("account").value = account;
  status("ok", `Registered ${done.account} in scope ${done.scope}. Keep this account id: you sign in with it.`);
  document.body.dataset.registered = done.account;
}

async function login() {
  const { scope, account } = fields();
  status("busy", "Signing in…");
  // The session key never leaves this browser: not extractable.
  const key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey));
  const sessionKey = "p256:" + b64u.encode(pub);
  const init = await rpc("keymesh_initiateAuthentication", { scope, account, sessionKey }, scope);
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: b64u.decode(init.challenge),
      rpId: init.rpId,
      allowCredentials: init.allowCredentials.map((id) => ({ type: "public-key", id: b64u.decode(id) })),
      userVerification: "required",
      timeout: init.timeout,
    },
  });
  const session = await rpc("keymesh_completeAuthentication", { challengeId: init.challengeId, credential: credentialJSON(cred) }, scope);
  window.keymeshSession = { ...session, sessionKey, privateKey: key.privateKey };
  status("ok", `Signed in as ${session.account}; session key ${sessionKey} valid until ${new Date(session.expiry * 1000).toISOString()}.`);
  document.body.dataset.session = session.record;
}

function run(f) {
  return () => f().catch((e) => status("error", String(e && e.message ? e.message : e)));
}

document.getElementById("sealing").textContent = simRoots.length > 0
  ? "Calls are sealed to the node's enclave key after its attestation is verified against the sim platform key pinned in this page (a development backend: its quotes prove nothing about hardware). Hardware attestation (Nitro, SEV-SNP, TDX) is not verified by this page, which refuses such nodes."
  : "Calls are sent unsealed: only a development node accepts them.";
document.getElementById("register").addEventListener("click", run(register));
document.getElementById("login").addEventListener("click", run(login));
const q = new URLSearchParams(location.search);
if (q.get("scope")) document.getElementById("scope").value = q.get("scope");
if (q.get("account")) document.getElementById("account").value = q.get("account");

// keymeshSign signs a message (base64url; an approval's signing message)
// with the session key, as ECDSA P-256 r‖s with a low s (lowS). It
// returns base64url.
async function keymeshSign(msgB64) {
  const s = window.keymeshSession;
  if (!s) throw new Error("not signed in");
  return b64u.encode(lowS(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, s.privateKey, b64u.decode(msgB64)))));
}
window.keymeshSign = keymeshSign;

// keymeshPasskeyApprove approves one operation with the passkey itself
// (per-operation mode): challenge is the approval's WebAuthn challenge
// (base64url of SHA-256 of its signing message). It returns the
// assertion's JSON, the "passkey" member of an X-Keymesh-Auth approval.
async function keymeshPasskeyApprove(challenge, rpId, credentialIds) {
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: b64u.decode(challenge),
      rpId,
      allowCredentials: credentialIds.map((id) => ({ type: "public-key", id: b64u.decode(id) })),
      userVerification: "required",
    },
  });
  return JSON.stringify(credentialJSON(cred));
}
window.keymeshPasskeyApprove = keymeshPasskeyApprove;
