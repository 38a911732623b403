"""Summarise py-spy's collapsed stacks (``--format raw``): where the sampled time went.

    python benchmarks/stacks.py FILE [--top K] [--match TEXT]

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), as a share of all samples. ``--match`` restricts to stacks through a frame
containing TEXT (e.g. ``process`` for the processor's path).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_LOCATION = re.compile(r" \((?P<file>[^)]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (path/to/file.py:123)`` → ``function (file.py)``: lines merged."""
    match = _LOCATION.search(frame)
    if match is None:
        return frame
    short = "/".join(match["file"].split("/")[-2:])
    return f"{frame[: match.start()]} ({short})"


def summarise(path: Path, top: int, match: str | None) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        parsed = _LINE.match(line.strip())
        if parsed is None:
            continue
        frames = [frame_name(f) for f in parsed["stack"].split(";") if f]
        if match is not None and not any(match in f for f in frames):
            continue
        count = int(parsed["count"])
        total += count
        if frames:
            own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if total == 0:
        return "no samples"
    out = [f"{total} samples" + (f" through {match!r}" if match else "")]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        out.append(f"\n top {top} by {title} time:")
        for name, count in counter.most_common(top):
            out.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    args = parser.parse_args(argv)
    print(summarise(args.file, args.top, args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
