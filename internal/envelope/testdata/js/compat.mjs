// Passport-compatible sealed requests for keymesh, with WebCrypto only (works
// in browsers and in Node.js >= 19 without packages). The format is described
// in internal/envelope/compat.go:
//
//   X-Encrypted-Key: base64(RSA-OAEP-SHA256(base64(aesKey)))
//   each field:      base64(iv12 ‖ AES-256-GCM ciphertext ‖ tag16)
//   field "_keymesh": sealed "KMCQ\x02" ‖ u64 ms ‖ nonce16 ‖ node id (32) ‖
//                     u8 len ‖ method ‖ u8 len ‖ scope ‖ SHA-256 digest of
//                     the other fields
//
// The node id is the node's Ed25519 identity key (base64, as in the cluster
// config and its attestation): a node refuses a request sealed for another.
//
// Field values are byte arrays (Uint8Array); use TextEncoder for strings.

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
export const META_FIELD = "_keymesh";

export function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function shortString(s) {
  const b = enc.encode(s);
  if (b.length > 255) throw new Error("method or scope longer than 255 bytes");
  return concat(new Uint8Array([b.length]), b);
}

// digest hashes every field but META_FIELD, sorted by name (names are ASCII,
// so JavaScript's sort order is byte order).
async function digest(body) {
  const names = Object.keys(body).filter((n) => n !== META_FIELD).sort();
  const parts = [];
  for (const n of names) {
    const nb = enc.encode(n);
    const vb = enc.encode(body[n]);
    parts.push(u32(nb.length), nb, u32(vb.length), vb);
  }
  return new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));
}

async function sealField(key, plaintext) {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv }, key, plaintext));
  return toBase64(concat(iv, ct));
}

async function openField(key, value) {
  const raw = fromBase64(value);
  if (raw.length < 28) throw new Error("field too short");
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: raw.subarray(0, 12) }, key, raw.subarray(12)));
}

// sealRequest seals fields ({name: Uint8Array}) for method and scope to the
// node's RSA key (SubjectPublicKeyInfo DER, base64) and identity key (node,
// base64 of 32 bytes), as read from its verified attestation. It returns the
// X-Encrypted-Key header, the JSON body, and the state that opens the
// response.
export async function sealRequest(spkiBase64, { node, method, scope = "", fields }, now = Date.now()) {
  const nodeID = fromBase64(node || "");
  if (nodeID.length !== 32) throw new Error("node must be the node's identity key: base64 of 32 bytes");
  const rsa = await subtle.importKey("spki", fromBase64(spkiBase64), { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  const raw = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const key = await subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  const wrapped = new Uint8Array(await subtle.encrypt({ name: "RSA-OAEP" }, rsa, enc.encode(toBase64(raw))));
  raw.fill(0);

  const body = {};
  for (const [name, value] of Object.entries(fields)) {
    if (name === META_FIELD) throw new Error(`field name ${META_FIELD} is reserved`);
    body[name] = await sealField(key, value);
  }
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(now));
  const meta = concat(enc.encode("KMCQ\x02"), ts, nonce, nodeID, shortString(method), shortString(scope), await digest(body));
  body[META_FIELD] = await sealField(key, meta);
  return { encryptedKey: toBase64(wrapped), body, pending: { key, nonce } };
}

// openResponse opens the node's response body with the state from
// sealRequest; it throws if the response is not for that request or was
// changed.
export async function openResponse(pending, body) {
  if (!(META_FIELD in body)) throw new Error("response has no meta field");
  const meta = await openField(pending.key, body[META_FIELD]);
  const want = concat(enc.encode("KMCR\x01"), pending.nonce, await digest(body));
  let diff = meta.length ^ want.length;
  for (let i = 0; i < Math.min(meta.length, want.length); i++) diff |= meta[i] ^ want[i];
  if (diff !== 0) throw new Error("response is not for this request, or its fields changed");
  const out = {};
  for (const [name, value] of Object.entries(body)) {
    if (name !== META_FIELD) out[name] = await openField(pending.key, value);
  }
  return out;
}
