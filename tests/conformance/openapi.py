"""Firecracker's OpenAPI 2.0 spec, read at test time: its operations, and its schemas turned
into JSON Schema (draft 4, which Swagger 2.0 schemas are a dialect of) for jsonschema."""

import copy
import re

import jsonschema
import yaml

METHODS = ("get", "put", "patch", "delete", "post")

# Keywords Swagger 2.0 adds to JSON Schema that carry no validation meaning here.
_OPENAPI_ONLY = ("readOnly", "example", "discriminator", "xml", "externalDocs")

# Integer formats the spec uses, as ranges the validator can check.
_INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class Operation:
    """One path + method of the spec."""

    def __init__(self, path, method, op):
        self.path = path
        self.method = method.upper()
        self.operation_id = op.get("operationId", "")
        self.summary = op.get("summary", "")
        self.body_schema = None
        self.body_required = False
        self.path_params = []
        for p in op.get("parameters", []):
            if p.get("in") == "body":
                self.body_schema = p.get("schema")
                self.body_required = bool(p.get("required", False))
            elif p.get("in") == "path":
                self.path_params.append(p["name"])
        # status code (int, or "default") -> response schema (or None for no body)
        self.responses = {}
        for code, r in op.get("responses", {}).items():
            key = code if code == "default" else int(code)
            self.responses[key] = (r or {}).get("schema")

    @property
    def key(self):
        return f"{self.method} {self.path}"

    def body_definition(self):
        """The definition name of the body ("Drive"), or None."""
        ref = (self.body_schema or {}).get("$ref", "")
        return ref.rsplit("/", 1)[-1] if ref else None

    def allows(self, status):
        return status in self.responses or "default" in self.responses

    def response_schema(self, status):
        if status in self.responses:
            return self.responses[status]
        return self.responses.get("default")

    def concrete_path(self, ids):
        """The path with its {params} filled from `ids` (name -> value)."""
        return re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], self.path)


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        if self.doc.get("swagger") != "2.0":
            raise ValueError(f"{path}: not an OpenAPI 2.0 (swagger) document")
        self.version = self.doc.get("info", {}).get("version", "?")
        self.definitions = self.doc.get("definitions", {})
        self.operations = []
        for path, item in self.doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    self.operations.append(Operation(path, method, item[method]))
        self._validators = {}

    def operation(self, method, path):
        for op in self.operations:
            if op.method == method and op.path == path:
                return op
        raise KeyError(f"{method} {path} is not in the spec")

    def paths(self):
        return sorted({op.path for op in self.operations})

    def resolve(self, schema):
        """Follows a $ref to its definition (one level)."""
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.definitions[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def definition(self, name):
        return self.definitions[name]

    def validator(self, schema, strict):
        """A jsonschema validator for a spec schema. strict: objects that list properties and
        say nothing about others get additionalProperties: false (a response with a field the
        spec does not name fails), and Error requires a non-empty fault_message."""
        key = (yaml.safe_dump(schema, sort_keys=True), strict)
        if key not in self._validators:
            root = to_json_schema(schema, strict)
            root["definitions"] = {
                name: to_json_schema(d, strict, name) for name, d in self.definitions.items()
            }
            jsonschema.Draft4Validator.check_schema(root)
            self._validators[key] = jsonschema.Draft4Validator(root)
        return self._validators[key]

    def errors(self, schema, instance, strict=True):
        """Validation errors of `instance` against a spec schema, as short strings."""
        v = self.validator(schema, strict)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))
        ]


def to_json_schema(schema, strict, name=None):
    """OpenAPI 2.0 schema -> JSON Schema draft 4. $refs to #/definitions stay as they are (the
    root carries the definitions). Firecracker serializes an absent optional field as null
    (serde's Option without skip_serializing_if, e.g. GET /vm/config's "balloon": null), which
    OpenAPI 2.0 cannot say: in strict (response) mode a property that is not required may be
    null."""
    s = copy.deepcopy(schema)
    return _convert(s, strict, name)


def _convert(s, strict, name=None):
    if not isinstance(s, dict):
        return s
    if "$ref" in s:
        # Draft 4 ignores a $ref's siblings (description etc.): keep only the $ref.
        return {"$ref": s["$ref"]}
    for k in _OPENAPI_ONLY:
        s.pop(k, None)
    s = {k: v for k, v in s.items() if not k.startswith("x-")}
    fmt = s.get("format")
    if s.get("type") == "integer" and fmt in _INT_FORMATS:
        lo, hi = _INT_FORMATS[fmt]
        s.setdefault("minimum", lo)
        s.setdefault("maximum", hi)
    if s.get("type") == "string" and isinstance(fmt, str) and "(" in fmt:
        # MmdsConfig.ipv4_address puts a regular expression in `format`.
        s["pattern"] = "^" + fmt + "$"
    s.pop("format", None)
    if "items" in s:
        s["items"] = _convert(s["items"], strict)
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = _convert(s["additionalProperties"], strict)
    if "properties" in s:
        required = set(s.get("required", []))
        props = {}
        for pname, p in s["properties"].items():
            c = _convert(p, strict)
            if strict and pname not in required:
                c = {"anyOf": [c, {"type": "null"}]}
            props[pname] = c
        s["properties"] = props
        if strict and "additionalProperties" not in s:
            s["additionalProperties"] = False
    if strict and name == "Error":
        s["required"] = ["fault_message"]
        s["properties"] = {"fault_message": {"type": "string", "minLength": 1}}
        s["additionalProperties"] = False
    return s
