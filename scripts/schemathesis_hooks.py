"""Loaded by tools/schemathesis.ts through SCHEMATHESIS_HOOKS.

One identify rule has no JSON Schema form: a field named more than once
across plain fields, $set_once and $unset is a 400 (docs/api.md#identify-operators).
Schemathesis would take such a body for a schema-valid one, so it is not generated;
test/identify-batch.test.ts covers the rule.
"""
import schemathesis

RESERVED = {"user_id", "datafast_visitor_id", "$set_once", "$unset"}


def names_a_field_twice(body):
    set_once = body.get("$set_once")
    unset = body.get("$unset")
    names = [name for name in body if name not in RESERVED]
    names += list(set_once) if isinstance(set_once, dict) else []
    names += [name for name in unset if isinstance(name, str)] if isinstance(unset, list) else []
    return len(names) != len(set(names))


@schemathesis.hook
def filter_body(context, body):
    if context.operation is None or context.operation.path != "/api/v1/identify" or not isinstance(body, dict):
        return True
    return not names_a_field_twice(body)
