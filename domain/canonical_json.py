"""The JSON that batch hashes are taken over: keys sorted, no spaces, text as UTF-8.

For text, integers, None, booleans, lists and objects with text keys, which is all a batch's
hashed fields hold, the bytes are those of ``json.dumps(value, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode()`` that stored chains were hashed over
(a property test holds the two to it); msgspec writes them several times faster, which
verifying a whole log needs. Floats are written as msgspec writes them (``1e16``, not
Python's ``1e+16``): no hashed field is a float, and a float where an integer was stored
changes the bytes under either encoder.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    try:
        return _encoder.encode(value)
    except (msgspec.EncodeError, TypeError):
        # Objects with keys other than text, say, which only a tampered store could hold.
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
