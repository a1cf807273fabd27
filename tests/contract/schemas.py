"""Loads the event schemas of proto/events and validates events against them.

Shared by test_schemas.py and validate_event.py. Works with Debian's python3-jsonschema
(4.10, RefResolver) and newer releases."""
import glob
import json
import os
import warnings

import jsonschema

warnings.filterwarnings("ignore", category=DeprecationWarning)


def load(schema_dir):
    """Returns {type: schema} for every event schema and the store of all schemas by $id."""
    store, by_type = {}, {}
    for path in sorted(glob.glob(os.path.join(schema_dir, "*.schema.json"))):
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        store[schema["$id"]] = schema
        name = os.path.basename(path)[: -len(".schema.json")]
        if name not in ("envelope", "defs"):
            by_type[name] = schema
    return by_type, store


def validator(schema, store):
    resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
    return jsonschema.Draft202012Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())


def errors(event, by_type, store):
    """The list of validation messages of one event (empty when valid)."""
    if not isinstance(event, dict) or event.get("type") not in by_type:
        return ["unknown event type %r" % (event.get("type") if isinstance(event, dict) else None)]
    v = validator(by_type[event["type"]], store)
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message)
            for e in sorted(v.iter_errors(event), key=lambda e: list(e.absolute_path))]
