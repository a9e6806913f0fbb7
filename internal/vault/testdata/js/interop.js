// Interop driver for internal/vault/interop_test.go. Reads one JSON request
// on stdin, answers on stdout. Uses the real npm tweetnacl and scrypt-js the
// way the idOS SDK does (packages/utils/src/encryption, issuer credential
// builder); it holds no crypto of its own.
"use strict";
const nacl = require("tweetnacl");
const scrypt = require("scrypt-js");
const { createHash, randomUUID } = require("crypto");

const b64 = (u8) => Buffer.from(u8).toString("base64");
const unb64 = (s) => new Uint8Array(Buffer.from(s, "base64"));
const hex = (u8) => Buffer.from(u8).toString("hex");
const utf8 = (s) => new TextEncoder().encode(s);
const concat = (a, b) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
};

// idOS encrypt(): fresh ephemeral key pair, content = nonce ‖ nacl.box.
function seal(message, receiverPublicKey) {
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const eph = nacl.box.keyPair();
  const box = nacl.box(message, nonce, receiverPublicKey, eph.secretKey);
  return { content: concat(nonce, box), encryptor: eph.publicKey };
}

// idOS decrypt().
function open(content, secretKey, encryptor) {
  const nonce = content.slice(0, nacl.box.nonceLength);
  const box = content.slice(nacl.box.nonceLength);
  const kp = nacl.box.keyPair.fromSecretKey(secretKey);
  return nacl.box.open(box, nonce, encryptor, kp.secretKey);
}

// idOSKeyDerivation v0.1 with scrypt-js.
async function derive(password, salt) {
  const pw = utf8(password.normalize("NFKC"));
  return scrypt.scrypt(pw, utf8(salt), 16384, 8, 1, 32);
}

// The issuer SDK's buildInsertableIDOSCredential.
function issue(req) {
  const signer = nacl.sign.keyPair.fromSeed(unb64(req.issuer_seed));
  const plaintext = unb64(req.plaintext);
  const { content, encryptor } = seal(plaintext, unb64(req.recipient));
  const pns = nacl.sign.detached(utf8(req.public_notes), signer.secretKey);
  const bs = nacl.sign.detached(concat(pns, content), signer.secretKey);
  return {
    id: randomUUID(),
    user_id: req.user_id,
    public_notes: req.public_notes,
    content: b64(content),
    encryptor_public_key: b64(encryptor),
    issuer_auth_public_key: hex(signer.publicKey),
    public_notes_signature: b64(pns),
    broader_signature: b64(bs),
    content_hash: hex(createHash("sha256").update(plaintext).digest()),
  };
}

// What idos.assert_credential_signatures checks, then open and hash.
function checkCredential(c, secretKey) {
  const issuer = new Uint8Array(Buffer.from(c.issuer_auth_public_key, "hex"));
  const pns = unb64(c.public_notes_signature);
  const content = unb64(c.content);
  const pt = open(content, secretKey, unb64(c.encryptor_public_key));
  return {
    public_notes_ok: nacl.sign.detached.verify(utf8(c.public_notes), pns, issuer),
    broader_ok: nacl.sign.detached.verify(concat(pns, content), unb64(c.broader_signature), issuer),
    plaintext: pt === null ? null : b64(pt),
    hash_ok: pt !== null && hex(createHash("sha256").update(pt).digest()) === c.content_hash,
  };
}

async function main() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const res = {};
  res.opened = req.to_js.map((b) => {
    const pt = open(unb64(b.content), unb64(b.sk), unb64(b.encryptor));
    return pt === null ? null : b64(pt);
  });
  const goPub = unb64(req.go_pub);
  res.sealed = req.messages.map((m) => {
    const s = seal(unb64(m), goPub);
    return { content: b64(s.content), encryptor: b64(s.encryptor) };
  });
  res.kdf = [];
  for (const k of req.kdf) res.kdf.push(b64(await derive(k.password, k.salt)));
  res.kdf_invalid_salt_rejected = /^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[a-f0-9]{4}-[a-f0-9]{12}$/i.test(req.invalid_salt) === false;
  res.credential = issue(req.issue);
  res.go_credential = checkCredential(req.go_credential, unb64(req.go_credential_sk));
  res.versions = { tweetnacl: require("tweetnacl/package.json").version, "scrypt-js": require("scrypt-js/package.json").version };
  process.stdout.write(JSON.stringify(res));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
