import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "node:test";
import { keyPair } from "./fixtures.ts";
import { parsePublicKey } from "./keys.ts";

const rsa = keyPair("rsa");
const ec = keyPair("ec");
const ed = keyPair("ed25519");

describe("parsePublicKey", () => {
  test("PEM SPKI keys of each supported type", () => {
    assert.equal(parsePublicKey(rsa.publicPem, 0).kty, "RSA");
    assert.deepEqual([parsePublicKey(ec.publicPem, 0).kty, parsePublicKey(ec.publicPem, 0).crv], ["EC", "P-256"]);
    assert.deepEqual([parsePublicKey(ed.publicPem, 0).kty, parsePublicKey(ed.publicPem, 0).crv], ["OKP", "Ed25519"]);
    assert.equal(parsePublicKey(keyPair("ec", { namedCurve: "P-384" }).publicPem, 0).crv, "P-384");
    assert.equal(parsePublicKey(rsa.publicPem, 0).kid, undefined);
  });

  test("a kid= prefix names the key; surrounding whitespace is ignored", () => {
    assert.equal(parsePublicKey(`kid=2025-01 ${rsa.publicPem}`, 0).kid, "2025-01");
    assert.equal(parsePublicKey(`\n  kid=k\n${rsa.publicPem}\n\n`, 0).kid, "k");
  });

  test("PKCS#1 RSA public keys are accepted", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pkcs1 = publicKey.export({ format: "pem", type: "pkcs1" }).toString();
    assert.equal(parsePublicKey(pkcs1, 0).kty, "RSA");
  });

  test("JWK JSON strings keep kid, alg, use and key_ops", () => {
    const parsed = parsePublicKey(JSON.stringify({ ...ec.publicJwk, kid: "e1", alg: "ES256", use: "sig", key_ops: ["verify"] }), 0);
    assert.equal(parsed.kid, "e1");
    assert.equal(parsed.alg, "ES256");
    assert.equal(parsed.use, "sig");
    assert.deepEqual(parsed.key_ops, ["verify"]);
    assert.equal(parsed.d, undefined);
  });

  test("refuses private, symmetric, weak and unsupported keys, naming only the index", () => {
    const x25519 = generateKeyPairSync("x25519").publicKey.export({ format: "pem", type: "spki" }).toString();
    const ed448 = generateKeyPairSync("ed448").publicKey.export({ format: "pem", type: "spki" }).toString();
    const k1 = keyPair("ec", { namedCurve: "secp256k1" }).publicPem;
    const weak = keyPair("rsa", { modulusLength: 1024 }).publicPem;
    const privateJwk = JSON.stringify(rsa.privateKey.export({ format: "jwk" }));
    const cases: [string, RegExp][] = [
      [rsa.privatePem, /expected a PEM public key/],
      [privateJwk, /public asymmetric key/],
      [JSON.stringify({ kty: "oct", k: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" }), /public asymmetric key/],
      [weak, /at least 2048 bits/],
      [k1, /P-256, P-384 or P-521/],
      [x25519, /unsupported key type/],
      [ed448, /unsupported key type/],
      ["{not json", /not valid JSON/],
      ["[1,2]", /expected a PEM|must be a JSON object/],
      ["{\"kty\":\"RSA\",\"n\":\"AQAB\"}", /not a valid public JWK/],
      [JSON.stringify({ ...ec.publicJwk, kid: 7 }), /"kid" must be a non-empty string/],
      ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", /not a valid public key/],
      ["kid=has space here -----BEGIN PUBLIC KEY-----", /expected a PEM public key/],
      ["hello", /expected a PEM public key/],
    ];
    for (const [entry, message] of cases) {
      assert.throws(
        () => parsePublicKey(entry, 3),
        (err: Error) => {
          assert.match(err.message, /^auth\.publicKeys\[3\]: /);
          assert.match(err.message, message);
          assert.ok(!err.message.includes("BEGIN PRIVATE") && !err.message.includes("AAAA"), err.message);
          return true;
        },
        entry.slice(0, 40),
      );
    }
  });
});
