"""Request bodies made from the spec's schemas: a valid body for an operation (every property
the schema lists, with values that also make sense to a real VMM where the schema alone cannot
say, e.g. paths to files that exist), and invalid bodies derived from it one rule at a time:
an unknown field, a missing required field, a wrong type, a value out of the schema's range or
enum, and a few that are not JSON at all."""

import copy
import json

UNKNOWN_FIELD = "ign_conformance_unknown"

# Text that is not a JSON document (or not one value).
MALFORMED_JSON = [
    ("truncated object", '{"'),
    ("trailing comma", '{"a": 1,}'),
    ("bare word", "not-json"),
    ("two values", "{} {}"),
    ("unterminated string", '{"a": "b'),
]


class Generator:
    """overrides: "Definition.property" or "property" -> value, or a callable (op_ids) ->
    value; a value of the module's SKIP leaves the property out. Property names are matched
    qualified first, then bare."""

    def __init__(self, spec, overrides):
        self.spec = spec
        self.overrides = overrides

    def body(self, op, ids):
        if op.body_schema is None:
            return None
        return self._value(op.body_schema, None, None, ids)

    def _override(self, definition, prop, ids):
        for key in (f"{definition}.{prop}", prop):
            if key in self.overrides:
                v = self.overrides[key]
                return True, (v(ids) if callable(v) else copy.deepcopy(v))
        return False, None

    def _value(self, schema, definition, prop, ids):
        if "$ref" in schema:
            definition = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec.definitions[definition]
        t = schema.get("type")
        if t == "object" or "properties" in schema:
            out = {}
            for name, ps in schema.get("properties", {}).items():
                found, v = self._override(definition, name, ids)
                if found:
                    if v is not SKIP:
                        out[name] = v
                    continue
                out[name] = self._value(ps, definition, name, ids)
            extra = schema.get("additionalProperties")
            if not schema.get("properties") and isinstance(extra, dict):
                out["key"] = self._value(extra, definition, prop, ids)
            return out
        if t == "array":
            return [self._value(schema.get("items", {}), definition, prop, ids)]
        if "default" in schema:
            return schema["default"]
        if "enum" in schema:
            return schema["enum"][0]
        if "example" in schema:
            return schema["example"]
        if t == "integer":
            return max(1, schema.get("minimum", 1))
        if t == "boolean":
            return False
        if t == "number":
            return 1.0
        return "x"


class _Skip:
    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return "SKIP"


SKIP = _Skip()


def wrong_type_values(schema):
    """Values of another JSON type than the schema's."""
    t = schema.get("type")
    if t == "integer":
        return ["1", 1.5, True]
    if t == "number":
        return ["1", True]
    if t == "boolean":
        return ["true", 1]
    if t == "string":
        return [1, True]
    if t == "array":
        return ["x", {}]
    if t == "object" or "properties" in schema:
        return ["x", []]
    return []


def out_of_range_values(schema):
    vals = []
    if "minimum" in schema:
        vals.append(("below minimum", schema["minimum"] - 1))
    if "maximum" in schema:
        vals.append(("above maximum", schema["maximum"] + 1))
    if "enum" in schema:
        vals.append(("not in enum", "NotAnEnumValue"))
    fmt = schema.get("format")
    if schema.get("type") == "string" and isinstance(fmt, str) and "(" in fmt:
        vals.append(("not matching the format", "10.0.0.1"))
    return vals


def invalid_bodies(spec, body_schema, valid):
    """(description, body text) pairs, each breaking the valid body in one way."""
    out = [(f"malformed JSON: {d}", text) for d, text in MALFORMED_JSON]
    root = spec.resolve(body_schema)
    for w in wrong_type_values(root):
        out.append((f"body of the wrong type {json.dumps(w)}", json.dumps(w)))
    for desc, body in _mutations(spec, body_schema, valid, "body"):
        out.append((desc, json.dumps(body)))
    return out


def _mutations(spec, schema, value, where):
    """Yields (description, mutated copy of value) for `value` valid under `schema`."""
    schema = spec.resolve(schema)
    if isinstance(value, dict) and isinstance(schema, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if props and extra is not True and not isinstance(extra, dict):
            yield f"unknown field in {where}", {**value, UNKNOWN_FIELD: 1}
        for name in schema.get("required", []):
            if name in value:
                yield f"{where}.{name} missing (required)", _without(value, name)
                yield f"{where}.{name} null (required)", {**value, name: None}
        for name, v in value.items():
            ps = props.get(name) if name in props else (extra if isinstance(extra, dict) else None)
            if ps is None:
                continue
            resolved = spec.resolve(ps)
            for w in wrong_type_values(resolved):
                yield f"{where}.{name} = {json.dumps(w)} (wrong type)", {**value, name: w}
            for desc, w in out_of_range_values(resolved):
                yield f"{where}.{name} = {json.dumps(w)} ({desc})", {**value, name: w}
            for desc, inner in _mutations(spec, ps, v, f"{where}.{name}"):
                yield desc, {**value, name: inner}
    elif isinstance(value, list) and value:
        items = schema.get("items", {})
        resolved = spec.resolve(items)
        for w in wrong_type_values(resolved)[:1]:
            yield f"{where}[0] = {json.dumps(w)} (wrong type)", [w] + value[1:]
        for desc, w in out_of_range_values(resolved):
            yield f"{where}[0] = {json.dumps(w)} ({desc})", [w] + value[1:]
        for desc, inner in _mutations(spec, items, value[0], f"{where}[0]"):
            yield desc, [inner] + value[1:]


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}
