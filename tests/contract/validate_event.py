#!/usr/bin/env python3
"""Validates JSON-lines events (a file, or - for stdin) against proto/events.

Usage: validate_event.py SCHEMA_DIR FILE|-
Prints one line per invalid event with the reasons; exits 1 when any is invalid."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schemas  # noqa: E402


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    by_type, store = schemas.load(sys.argv[1])
    src = sys.stdin if sys.argv[2] == "-" else open(sys.argv[2], encoding="utf-8")
    bad = total = 0
    for lineno, line in enumerate(src, 1):
        if not line.strip():
            continue
        total += 1
        try:
            event = json.loads(line)
        except ValueError as e:
            print("line %d: not JSON: %s" % (lineno, e))
            bad += 1
            continue
        errs = schemas.errors(event, by_type, store)
        if errs:
            bad += 1
            print("line %d (%s): %s" % (lineno, event.get("type"), "; ".join(errs)))
    print("%d events, %d invalid" % (total, bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
