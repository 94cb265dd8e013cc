import { createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from "node:crypto";
import type { JWK } from "jose";

/** Smallest RSA modulus accepted, in bits (jose refuses smaller keys at verification anyway). */
const MIN_RSA_BITS = 2048;

/** EC curves jose verifies with (ES256, ES384, ES512). */
const EC_CURVES = new Set(["P-256", "P-384", "P-521"]);

/**
 * `kid=<id>` prefix (optional), then one PEM public key block. PKCS#8 private keys and
 * certificates are refused on purpose: the pod only ever holds public verification keys.
 */
const PEM_ENTRY = /^(?:kid=(\S{1,256})\s+)?(-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY)-----[A-Za-z0-9+/=\s]+-----END \3-----)$/;

/** JWK members that only private or symmetric keys have. */
const SECRET_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;

/**
 * Parses one entry of `auth.publicKeys` into a public JWK ready for a local JWKS.
 *
 * An entry is either a PEM public key (SPKI `BEGIN PUBLIC KEY`, or PKCS#1 `BEGIN RSA PUBLIC
 * KEY`), optionally prefixed with `kid=<id>` and whitespace, or a JWK as a JSON object string,
 * whose own `kid`, `alg`, `use` and `key_ops` are kept. Only RSA (≥ 2048 bits), EC P-256/P-384/
 * P-521 and Ed25519 public keys are accepted; symmetric (`oct`) and private keys are refused, so a
 * public key can never be used as an HMAC secret.
 *
 * @throws {Error} naming the entry by index (never echoing key material) when it is not usable.
 */
export function parsePublicKey(entry: string, index: number): JWK {
  const where = `auth.publicKeys[${index}]`;
  const text = entry.trim();
  let key: KeyObject;
  let extra: Partial<Pick<JWK, "kid" | "alg" | "use" | "key_ops">> = {};
  if (text.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${where}: not valid JSON`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error(`${where}: a JWK must be a JSON object`);
    const jwk = json as Record<string, unknown>;
    if (jwk["kty"] === "oct" || SECRET_MEMBERS.some((m) => m in jwk)) {
      throw new Error(`${where}: must be a public asymmetric key (put HMAC secrets in auth.hs256Secret)`);
    }
    extra = jwkMetadata(jwk, where);
    try {
      key = createPublicKey({ key: jwk as NodeJwk, format: "jwk" });
    } catch {
      throw new Error(`${where}: not a valid public JWK`);
    }
  } else {
    const match = PEM_ENTRY.exec(text);
    if (match === null) {
      throw new Error(`${where}: expected a PEM public key ("-----BEGIN PUBLIC KEY-----", optionally prefixed "kid=<id> ") or a JWK JSON object`);
    }
    try {
      key = createPublicKey(match[2] as string);
    } catch {
      throw new Error(`${where}: PEM block is not a valid public key`);
    }
    if (match[1] !== undefined) extra = { kid: match[1] };
  }
  checkKeyType(key, where);
  return { ...(key.export({ format: "jwk" }) as JWK), ...extra };
}

function jwkMetadata(jwk: Record<string, unknown>, where: string): Partial<Pick<JWK, "kid" | "alg" | "use" | "key_ops">> {
  const out: Partial<Pick<JWK, "kid" | "alg" | "use" | "key_ops">> = {};
  for (const name of ["kid", "alg", "use"] as const) {
    const value = jwk[name];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length === 0 || value.length > 256) throw new Error(`${where}: "${name}" must be a non-empty string`);
    out[name] = value;
  }
  const ops = jwk["key_ops"];
  if (ops !== undefined) {
    if (!Array.isArray(ops) || !ops.every((o) => typeof o === "string")) throw new Error(`${where}: "key_ops" must be an array of strings`);
    out.key_ops = ops as string[];
  }
  return out;
}

function checkKeyType(key: KeyObject, where: string): void {
  if (key.type !== "public") throw new Error(`${where}: not a public key`);
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`${where}: RSA keys must have at least ${MIN_RSA_BITS} bits`);
      return;
    case "ec":
      if (!EC_CURVES.has(namedCurveToJwk(details.namedCurve))) throw new Error(`${where}: EC keys must use P-256, P-384 or P-521`);
      return;
    case "ed25519":
      return;
    default:
      throw new Error(`${where}: unsupported key type (use RSA, EC P-256/P-384/P-521 or Ed25519)`);
  }
}

/** Node names curves by their OpenSSL names; JWK by their NIST names. */
function namedCurveToJwk(curve: string | undefined): string {
  switch (curve) {
    case "prime256v1":
      return "P-256";
    case "secp384r1":
      return "P-384";
    case "secp521r1":
      return "P-521";
    default:
      return curve ?? "";
  }
}
