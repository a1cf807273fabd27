#!/usr/bin/env python3
"""Validates JSON-lines events against the schemas of proto/events.

Usage: validate_event.py SCHEMA_DIR FILE|-

Reads one event per line from FILE (or stdin for -); blank lines are skipped. A FILE that
is one JSON document (an event, or an array of events) is read as such. Each event is
checked against proto/events/<type>.schema.json, the schema of its own "type". Prints one
line per invalid event on stdout:
    line N (TYPE, EVENT_ID): PATH: REASON; PATH: REASON...
and a count on stderr. Exit status: 0 all valid, 1 some invalid, 2 usage or I/O error."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schemas  # noqa: E402


def records(text):
    """Yields (where, event or ValueError) for JSON lines, or for one JSON document."""
    lines = [(n, l) for n, l in enumerate(text.splitlines(), 1) if l.strip()]
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, list):
        for i, event in enumerate(doc, 1):
            yield "event %d" % i, event
        return
    if isinstance(doc, dict) and len(lines) > 1:
        yield "event 1", doc
        return
    for lineno, line in lines:
        try:
            yield "line %d" % lineno, json.loads(line)
        except ValueError as e:
            yield "line %d" % lineno, e


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    schema_dir, name = argv[1], argv[2]
    try:
        by_type, store = schemas.load(schema_dir)
    except (OSError, ValueError, KeyError) as e:
        print("validate_event: cannot load schemas from %s: %s" % (schema_dir, e), file=sys.stderr)
        return 2
    if not by_type:
        print("validate_event: no *.schema.json in %s" % schema_dir, file=sys.stderr)
        return 2
    try:
        src = sys.stdin if name == "-" else open(name, encoding="utf-8")
    except OSError as e:
        print("validate_event: %s" % e, file=sys.stderr)
        return 2
    with src:
        try:
            text = src.read()
        except (OSError, UnicodeDecodeError) as e:
            print("validate_event: %s" % e, file=sys.stderr)
            return 2
    bad = total = 0
    for where, event in records(text):
        total += 1
        if isinstance(event, ValueError):
            print("%s: not JSON: %s" % (where, event))
            bad += 1
            continue
        errs = schemas.errors(event, by_type, store)
        if errs:
            bad += 1
            if isinstance(event, dict):
                what = "%s, %s" % (event.get("type"), event.get("event_id"))
            else:
                what = type(event).__name__
            print("%s (%s): %s" % (where, what, "; ".join(errs)))
    print("validate_event: %d events, %d invalid" % (total, bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
