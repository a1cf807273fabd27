#!/usr/bin/env python3
"""Writes signatures.json: the WeChat server-signature vectors of tests/ingest/test_wechat.c.

The signature WeChat puts in the query string is
    hex(SHA-1(concat(sorted([token, timestamp, nonce]))))
with a bytewise sort (PHP sort(SORT_STRING) in WeChat's sample; Python sorts str by code
point, which is the same order for UTF-8). Each vector is computed here with hashlib,
independently of the C code. Only the 40 lowercase hex digits WeChat sends are accepted;
parameters must be present, non-empty and at most 128 bytes.

Run: python3 tests/data/wechat/make_signatures.py   (rewrites signatures.json)
"""
import hashlib
import json
import os

TOKEN = "dev-wechat-token"


def sign(token, timestamp, nonce):
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def case(note, token, timestamp, nonce, signature, valid):
    return {"note": note, "token": token, "timestamp": timestamp, "nonce": nonce,
            "signature": signature, "valid": valid}


good = sign(TOKEN, "1716184800", "1846937513")
long_nonce = "n" * 128
too_long_nonce = "n" * 129
cases = [
    case("valid: digits-only nonce sorts before the token", TOKEN, "1716184800", "1846937513",
         good, True),
    case("valid: nonce sorting before the token ('a' < 'd')", TOKEN, "1716185101", "abcXYZ09",
         sign(TOKEN, "1716185101", "abcXYZ09"), True),
    case("valid: nonce sorting after the token", TOKEN, "1716185222", "zq81kLm",
         sign(TOKEN, "1716185222", "zq81kLm"), True),
    case("valid: nonce sorting between timestamp and token", TOKEN, "1716185341", "9Yx",
         sign(TOKEN, "1716185341", "9Yx"), True),
    case("valid: nonce of exactly 128 bytes", TOKEN, "1716185400", long_nonce,
         sign(TOKEN, "1716185400", long_nonce), True),
    case("invalid: one hex digit changed", TOKEN, "1716184800", "1846937513",
         good[:-1] + ("0" if good[-1] != "0" else "1"), False),
    case("invalid: truncated to 39 digits", TOKEN, "1716184800", "1846937513", good[:-1], False),
    case("invalid: 41 characters", TOKEN, "1716184800", "1846937513", good + "0", False),
    case("invalid: uppercase hex (WeChat sends lowercase)", TOKEN, "1716184800", "1846937513",
         good.upper(), False),
    case("invalid: padded with a space", TOKEN, "1716184800", "1846937513", " " + good[:-1],
         False),
    case("invalid: non-hex character", TOKEN, "1716184800", "1846937513", "g" + good[1:], False),
    case("invalid: empty signature", TOKEN, "1716184800", "1846937513", "", False),
    case("invalid: signed with another token", TOKEN, "1716184800", "1846937513",
         sign("prod-wechat-token", "1716184800", "1846937513"), False),
    case("invalid: another timestamp", TOKEN, "1716184801", "1846937513", good, False),
    case("invalid: concatenated without sorting", TOKEN, "1716185101", "abcXYZ09",
         hashlib.sha1((TOKEN + "1716185101" + "abcXYZ09").encode()).hexdigest(), False),
    case("invalid: empty nonce, even though the digest matches", TOKEN, "1716184800", "",
         sign(TOKEN, "1716184800", ""), False),
    case("invalid: empty token (unset secret), even though the digest matches", "",
         "1716184800", "1846937513", sign("", "1716184800", "1846937513"), False),
    case("invalid: nonce of 129 bytes, even though the digest matches", TOKEN, "1716185400",
         too_long_nonce, sign(TOKEN, "1716185400", too_long_nonce), False),
    case("invalid: missing nonce (null)", TOKEN, "1716184800", None, good, False),
    case("invalid: missing signature (null)", TOKEN, "1716184800", "1846937513", None, False),
]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "signatures.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
