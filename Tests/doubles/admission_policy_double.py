"""admission_policy_double: a test double of kube-apiserver's ValidatingAdmissionPolicy admission
plugin (admissionregistration.k8s.io/v1), for Tests/doubles/api-double. It is not Kubernetes: it
evaluates the policies and bindings of a manifest with cel-python (a real CEL engine, Google's
CEL specification in Python; the API server runs cel-go), and answers as the plugin does:

- a policy applies when one of its bindings names it, a resourceRule of its matchConstraints
  matches (group, version, operation, resource and subresource, "*" and "res/*" included) and
  every matchCondition is true; a matchCondition or validation that fails to evaluate counts as
  the policy's failurePolicy says (Fail: refused);
- the variables `object`, `oldObject` (null where the API server gives null: no old object on
  CREATE, no object on DELETE), `request` (an admission.k8s.io/v1 AdmissionRequest as the API
  server converts it for CEL: fields left empty are absent, so `has(request.subResource)` is
  false for the main resource, and userInfo.extra carries the token's
  authentication.kubernetes.io/* claims), `params` (null: no paramKind) and `variables`
  (each evaluated in order, an error kept as the variable's value and raised where it is used);
- a refusal is the API server's: admission.NewForbidden's message `RESOURCE "NAME" is forbidden:
  ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MESSAGE`, the validation's reason
  (Invalid when it has none) and the code that reason has (403 Forbidden, 422 Invalid, ...), the
  message repeated as the one cause. The message is the validation's messageExpression, else its
  message, else "failed expression: EXPR".

What it does not do, and refuses to load rather than ignore: a paramKind, a binding's
matchResources or paramRef, namespaceSelector/objectSelector/excludeResourceRules, auditAnnotations,
and the `authorizer` variable. Expressions must stay within what both cel-python and cel-go
accept: no optional syntax (`obj.?field`, `map[?key]`, `orValue`), which cel-python 0.5 cannot
parse, so the shipped policy writes `has(x.f) ? x.f : default` instead; no Kubernetes CEL
libraries (quantity, url, ip, authz).
"""
import celpy
from celpy import celtypes

ADMISSION_GROUP = "admissionregistration.k8s.io/v1"
REASON_CODES = {"Forbidden": 403, "Invalid": 422, "Unauthorized": 401, "RequestEntityTooLarge": 413}
UNSUPPORTED_SELECTORS = ("namespaceSelector", "objectSelector", "excludeResourceRules")


class PolicyError(Exception):
    """A manifest's policy the double cannot evaluate as the API server would."""


class Program:
    """One CEL expression, compiled once."""

    def __init__(self, env, expression, where):
        self.expression = expression
        try:
            self.program = env.program(env.compile(expression))
        except Exception as e:  # cel-python's parse and compile errors have no common base
            raise PolicyError(f"{where}: cel-python cannot compile {expression!r}: {e}") from e

    def run(self, activation):
        """(value, None), or (None, the error's text) when evaluation fails."""
        try:
            return self.program.evaluate(activation), None
        except celpy.CELEvalError as e:
            return None, str(e.args[0] if e.args else e)
        except Exception as e:  # a bug in an expression is an evaluation error, as in cel-go
            return None, f"{type(e).__name__}: {e}"


class Policy:
    def __init__(self, env, doc):
        name = doc["metadata"]["name"]
        spec = doc.get("spec") or {}
        self.name = name
        for unsupported in ("paramKind", "auditAnnotations"):
            if spec.get(unsupported):
                raise PolicyError(f"ValidatingAdmissionPolicy {name}: {unsupported} is not evaluated by this double")
        constraints = spec.get("matchConstraints") or {}
        for unsupported in UNSUPPORTED_SELECTORS:
            if constraints.get(unsupported):
                raise PolicyError(f"ValidatingAdmissionPolicy {name}: matchConstraints.{unsupported} is not evaluated by this double")
        self.rules = constraints.get("resourceRules") or []
        self.failure_policy = spec.get("failurePolicy") or "Fail"
        where = f"ValidatingAdmissionPolicy {name}"
        self.conditions = [Program(env, c["expression"], f"{where} matchCondition {c['name']}") for c in spec.get("matchConditions") or []]
        self.variables = [(v["name"], Program(env, v["expression"], f"{where} variable {v['name']}")) for v in spec.get("variables") or []]
        self.validations = []
        for i, v in enumerate(spec.get("validations") or []):
            message = Program(env, v["messageExpression"], f"{where} validations[{i}].messageExpression") if v.get("messageExpression") else None
            self.validations.append((Program(env, v["expression"], f"{where} validations[{i}]"), v.get("message"), message, v.get("reason")))
        for program in [c for c in self.conditions] + [p for _, p in self.variables] + [v[0] for v in self.validations]:
            if "authorizer" in program.expression or ".?" in program.expression or "[?" in program.expression:
                raise PolicyError(f"{where}: {program.expression!r} uses what this double does not evaluate (authorizer, optionals)")

    def matches(self, attributes):
        for rule in self.rules:
            if rule.get("scope", "*") not in ("*", "Cluster" if not attributes["namespace"] else "Namespaced"):
                continue
            if not _among(attributes["group"], rule.get("apiGroups")) or not _among(attributes["version"], rule.get("apiVersions")):
                continue
            if not _among(attributes["operation"], rule.get("operations")):
                continue
            if rule.get("resourceNames") and attributes["name"] not in rule["resourceNames"]:
                continue
            for resource in rule.get("resources") or []:
                main, _, sub = resource.partition("/")
                if main not in ("*", attributes["resource"]):
                    continue
                if (sub == "" and attributes["subresource"] == "") or sub == "*" or (sub and sub == attributes["subresource"]):
                    return True
        return False


def _among(value, allowed):
    return "*" in (allowed or []) or value in (allowed or [])


class AdmissionPolicies:
    """The ValidatingAdmissionPolicies and their bindings of a manifest's documents."""

    def __init__(self, docs):
        env = celpy.Environment()
        policies = [d for d in docs if d.get("kind") == "ValidatingAdmissionPolicy" and d.get("apiVersion") == ADMISSION_GROUP]
        self.policies = {p["metadata"]["name"]: Policy(env, p) for p in policies}
        self.bindings = []
        for b in docs:
            if b.get("kind") != "ValidatingAdmissionPolicyBinding" or b.get("apiVersion") != ADMISSION_GROUP:
                continue
            spec = b.get("spec") or {}
            name = b["metadata"]["name"]
            for unsupported in ("matchResources", "paramRef"):
                if spec.get(unsupported):
                    raise PolicyError(f"ValidatingAdmissionPolicyBinding {name}: {unsupported} is not evaluated by this double")
            actions = spec.get("validationActions") or []
            if not actions:
                raise PolicyError(f"ValidatingAdmissionPolicyBinding {name}: validationActions is required (the API server refuses it)")
            self.bindings.append((name, spec.get("policyName"), actions))

    def admit(self, attributes, obj, old):
        """None when admitted; else (code, the API server's Status, what was decided, for the log).

        attributes: operation (CREATE, UPDATE, DELETE, CONNECT), group, version, resource,
        subresource, kind, name, namespace, user, groups, extra (dict of lists)."""
        request = admission_request(attributes)
        for binding, policy_name, actions in self.bindings:
            policy = self.policies.get(policy_name)
            # A binding whose policy is missing is a misconfiguration the API server reports on
            # the binding and does not enforce.
            if policy is None or not policy.matches(attributes):
                continue
            activation = {"object": _cel(obj), "oldObject": _cel(old), "request": _cel(request), "params": _cel(None)}
            denial = self._evaluate(policy, activation)
            if denial is None or "Deny" not in actions:
                continue
            message, reason = denial
            text = f"ValidatingAdmissionPolicy '{policy.name}' with binding '{binding}' denied request: {message}"
            code, body = refusal(attributes, text, reason or "Invalid")
            return code, body, {"policy": policy.name, "binding": binding, "message": message}
        return None

    def _evaluate(self, policy, activation):
        """None when the policy admits; else (message, reason)."""
        for i, condition in enumerate(policy.conditions):
            value, error = condition.run(activation)
            if error is not None:
                if policy.failure_policy == "Fail":
                    return f"expression '{condition.expression}' resulted in error: {error}", None
                return None
            if not value:
                return None
        variables = {}
        for name, program in policy.variables:
            scope = dict(activation, variables=celtypes.MapType(variables))
            value, error = program.run(scope)
            # As cel-go's lazy variables: an error surfaces only where the variable is used.
            variables[celtypes.StringType(name)] = celpy.CELEvalError(error) if error is not None else value
        scope = dict(activation, variables=celtypes.MapType(variables))
        for program, message, message_expression, reason in policy.validations:
            value, error = program.run(scope)
            if error is not None:
                if policy.failure_policy == "Fail":
                    return f"expression '{program.expression}' resulted in error: {error}", None
                continue
            if value:
                continue
            text = None
            if message_expression is not None:
                said, failed = message_expression.run(scope)
                text = str(said) if failed is None and str(said).strip() else None
            return text or (message.strip() if message else f"failed expression: {program.expression.strip()}"), reason
        return None


def admission_request(a):
    """An AdmissionRequest as kube-apiserver hands it to CEL: unstructured, empty fields absent."""
    extra = {k: list(v) for k, v in (a.get("extra") or {}).items()}
    user = {"username": a["user"], "groups": list(a["groups"])}
    if extra:
        user["extra"] = extra
    gvk = {"group": a["group"], "version": a["version"], "kind": a["kind"]}
    gvr = {"group": a["group"], "version": a["version"], "resource": a["resource"]}
    options = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(a["operation"])
    request = {"uid": a.get("uid", ""), "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
               "operation": a["operation"], "userInfo": user}
    for key, field in (("subresource", "subResource"), ("name", "name"), ("namespace", "namespace")):
        if a.get(key):
            request[field] = a[key]
    if a.get("subresource"):
        request["requestSubResource"] = a["subresource"]
    if options:
        request["options"] = {"kind": options, "apiVersion": "meta.k8s.io/v1"}
    return request


def refusal(a, message, reason):
    """admission.NewForbidden's Status, with the policy's reason and that reason's code."""
    resource = a["resource"] + ("." + a["group"] if a["group"] else "")
    name = a.get("name") or ""
    full = f'{resource} "{name}" is forbidden: {message}' if name else f"{resource} is forbidden: {message}"
    details = {"name": name} if name else {}
    if a["group"]:
        details["group"] = a["group"]
    details["kind"] = a["resource"]
    details["causes"] = [{"message": message}]
    code = REASON_CODES.get(reason, 422)  # the plugin's reasonToCode
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": full,
                  "reason": reason, "details": details, "code": code}


def _cel(value):
    return celpy.json_to_cel(value)
