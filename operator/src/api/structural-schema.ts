/**
 * zod → a Kubernetes structural OpenAPI v3 schema (what a CRD's `openAPIV3Schema` must be).
 *
 * zod's JSON Schema output is close; a structural schema differs in a few ways, handled here:
 * no `$schema`, no `propertyNames`; every node has a `type` (or an int-or-string / preserve-unknown
 * marker); an int-or-string union becomes `x-kubernetes-int-or-string`; an opaque object keeps
 * unknown fields instead of `additionalProperties`; integer bounds at ±2^53−1 (zod's way of saying
 * "any safe integer") are dropped. Anything else zod emits that a structural schema cannot carry
 * (`$ref`, `oneOf`, unmarked `anyOf`, …) is an error, so a schema change that the CRD cannot express
 * fails the generator instead of producing a CRD the API server refuses.
 *
 * @module
 */
import { z } from "zod";

/** A node of an OpenAPI v3 schema (the subset CRDs use). */
export type SchemaNode = { [key: string]: unknown };

const DROPPED_KEYS = new Set(["$schema", "propertyNames", "id"]);
const PASSTHROUGH_KEYS = new Set([
  "type",
  "description",
  "default",
  "enum",
  "format",
  "pattern",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "required",
  "nullable",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
]);

/** Thrown when a zod schema has a part that a structural schema cannot express. */
export class StructuralSchemaError extends Error {
  override readonly name = "StructuralSchemaError";
  readonly code = "OP_ERR_SCHEMA";
}

/**
 * Converts a zod schema (as the API server will see input: defaults are optional) into a
 * structural schema.
 *
 * @throws {StructuralSchemaError} naming the path of the first part that cannot be expressed
 */
export function toStructuralSchema(schema: z.ZodType): SchemaNode {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "throw" }) as SchemaNode;
  return convert(json, "");
}

function convert(node: SchemaNode, path: string): SchemaNode {
  const at = path || "(root)";
  if (node["x-kubernetes-int-or-string"] === true) {
    return pick(node, ["description", "default", "x-kubernetes-validations"], { "x-kubernetes-int-or-string": true });
  }
  if (node["x-kubernetes-preserve-unknown-fields"] === true) {
    return pick(node, ["description", "x-kubernetes-validations"], { type: "object", "x-kubernetes-preserve-unknown-fields": true });
  }
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key === "properties") {
      const props: SchemaNode = {};
      for (const [name, child] of Object.entries(value as Record<string, SchemaNode>)) props[name] = convert(child, `${path}.${name}`);
      out["properties"] = props;
    } else if (key === "items") {
      out["items"] = convert(value as SchemaNode, `${path}[]`);
    } else if (key === "additionalProperties") {
      // zod emits `false` for strict objects; a structural schema prunes unknown fields anyway.
      if (value === false) continue;
      out["additionalProperties"] = convert(value as SchemaNode, `${path}.*`);
    } else if ((key === "minimum" || key === "maximum") && Math.abs(value as number) === Number.MAX_SAFE_INTEGER) {
      continue;
    } else if (PASSTHROUGH_KEYS.has(key)) {
      out[key] = value;
    } else {
      throw new StructuralSchemaError(`${at}: "${key}" cannot be expressed in a structural schema`);
    }
  }
  if (typeof out["type"] !== "string") throw new StructuralSchemaError(`${at}: a structural schema needs one type (got ${JSON.stringify(out["type"])})`);
  if (out["properties"] !== undefined && out["additionalProperties"] !== undefined) {
    throw new StructuralSchemaError(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  return out;
}

function pick(node: SchemaNode, keys: readonly string[], base: SchemaNode): SchemaNode {
  const out: SchemaNode = { ...base };
  for (const key of keys) if (node[key] !== undefined) out[key] = node[key];
  return out;
}
