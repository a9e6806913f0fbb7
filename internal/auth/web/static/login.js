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

let rpcID = 0;
async function rpc(method, params) {
  const resp = await fetch(nodeEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcID, method, params }),
  });
  const body = await resp.json();
  if (body.error) throw new Error(`${method}: ${body.error.message} (code ${body.error.code})`);
  return body.result;
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
  const init = await rpc("keymesh_initiateRegistration", { scope, account, registrationKey: "p256:" + b64u.encode(regPub) });
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
  const done = await rpc("keymesh_completeRegistration", { challengeId: init.challengeId, credential, signature: b64u.encode(sig) });
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
  const init = await rpc("keymesh_initiateAuthentication", { scope, account, sessionKey });
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: b64u.decode(init.challenge),
      rpId: init.rpId,
      allowCredentials: init.allowCredentials.map((id) => ({ type: "public-key", id: b64u.decode(id) })),
      userVerification: "required",
      timeout: init.timeout,
    },
  });
  const session = await rpc("keymesh_completeAuthentication", { challengeId: init.challengeId, credential: credentialJSON(cred) });
  window.keymeshSession = { ...session, sessionKey, privateKey: key.privateKey };
  status("ok", `Signed in as ${session.account}; session key ${sessionKey} valid until ${new Date(session.expiry * 1000).toISOString()}.`);
  document.body.dataset.session = session.record;
}

function run(f) {
  return () => f().catch((e) => status("error", String(e && e.message ? e.message : e)));
}

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
