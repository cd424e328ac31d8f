"""Sends one request and judges the reply against the spec: the status must be one the
operation lists (or its `default`), the body must validate against that status's schema
(faults against Error = {fault_message}), and the status must be the expected kind (success,
fault, or either for a partial route). Keeps the tally, the failures and which operations saw
valid and invalid requests."""

import collections

import rules

OK, FAULT, EITHER = "success", "fault", "success-or-fault"


class Checker:
    def __init__(self, spec, verbose=False):
        self.spec = spec
        self.verbose = verbose
        self.passed = 0
        self.failures = []
        self.coverage = collections.defaultdict(set)  # op key -> {"valid", "invalid"}
        self.not_yet = collections.OrderedDict()  # partial op key -> fault message
        self.notes = set()

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL: {what}", flush=True)
        return cond

    def send(
        self, vmm, op, body=None, expect=OK, kind="valid", ids=None, message=None, label=None
    ):
        """Sends op (an openapi.Operation) with `body` (None: no body; str: sent as is;
        otherwise JSON) and checks the reply. `message`: a fault must contain it. `label`
        names the request in failures. Returns the Reply."""
        path = op.concrete_path(ids or rules.IDS)
        reply = vmm.request(op.method, path, body)
        self.coverage[op.key].add(kind)
        what = f"{op.method} {path} [{label or kind}]"
        self.judge(op, reply, expect, what, message)
        return reply

    def judge(self, op, reply, expect, what, message=None):
        status = reply.status
        if self.verbose:
            print(f"  {what} -> {reply!r}", flush=True)
        fault = status >= 400
        if expect == OK:
            self.check(200 <= status < 300, f"{what}: expected success, got {reply!r}")
        elif expect == FAULT:
            self.check(status == 400, f"{what}: expected a 400 fault, got {reply!r}")
        else:
            self.check(
                200 <= status < 300 or status == 400,
                f"{what}: expected success or a 400 fault, got {reply!r}",
            )
        if op is not None:
            self.check(op.allows(status), f"{what}: status {status} is not in the spec's list")
            schema = op.response_schema(status)
        else:
            schema = {"$ref": "#/definitions/Error"} if fault else None
        self.check_body(schema, reply, what)
        if fault and message is not None:
            self.check(message in reply.text(), f"{what}: fault does not say {message!r}: {reply!r}")
        if fault and op is not None and expect == EITHER:
            text = reply.text()
            if rules.NOT_YET in text:
                self.not_yet.setdefault(what.split(" [")[0], text)

    def check_body(self, schema, reply, what):
        if schema is None:
            self.check(reply.body == b"", f"{what}: expected no body, got {reply.body[:200]!r}")
            return None
        ctype = reply.headers.get("content-type", "")
        self.check("application/json" in ctype, f"{what}: Content-Type is {ctype!r}")
        try:
            doc = reply.json()
        except ValueError as e:
            self.check(False, f"{what}: body is not JSON ({e}): {reply.body[:200]!r}")
            return None
        errors = self.spec.errors(schema, doc)
        self.check(not errors, f"{what}: body does not match the spec's schema: {errors}; {doc}")
        return doc

    def summary(self):
        return f"{self.passed} passed, {len(self.failures)} failed"
