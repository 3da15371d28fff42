#!/usr/bin/env python3
"""Times two commands in turn (A B A B ...) and prints their wall times and
the ratio A/B taken pair by pair, so a machine whose speed drifts during the
run moves both sides of each ratio alike.

    pair.py --runs 5 --label-a http --label-b sftp \\
        --prepare 'sh -c "rm -f data/.bak/*"' -- 'curl ...' 'sftp ...'

--prepare runs (untimed) before every run of either command; --prepare-a
and --prepare-b before every run of that command only. Output is a
markdown table: min / median / max for A, B and A/B. Exit status 1 if any run
failed (its exit status is printed).
"""

import argparse
import shlex
import statistics
import subprocess
import sys
import time


def run(cmd):
    start = time.monotonic()
    done = subprocess.run(shlex.split(cmd), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.stderr.write(f"failed ({done.returncode}): {cmd}\n{done.stderr.decode(errors='replace')}\n")
        sys.exit(1)
    return wall


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--prepare", default=None)
    p.add_argument("--prepare-a", default=None)
    p.add_argument("--prepare-b", default=None)
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    p.add_argument("a")
    p.add_argument("b")
    args = p.parse_args()

    def once(cmd, own):
        for prep in (args.prepare, own):
            if prep:
                subprocess.run(shlex.split(prep), check=True)
        return run(cmd)

    for _ in range(args.warmup):
        once(args.a, args.prepare_a)
        once(args.b, args.prepare_b)
    a, b = [], []
    for _ in range(args.runs):
        a.append(once(args.a, args.prepare_a))
        b.append(once(args.b, args.prepare_b))
    ratios = [x / y for x, y in zip(a, b)]

    def row(name, xs, unit):
        fmt = "{:.3f}" if unit else "{:.2f}"
        cells = [fmt.format(v) + unit for v in (min(xs), statistics.median(xs), max(xs))]
        print(f"| {name} | " + " | ".join(cells) + " |")

    print(f"{args.runs} pairs, after {args.warmup} warm-up pair(s)")
    print()
    print("| wall | min | median | max |")
    print("|---|---|---|---|")
    row(f"A ({args.label_a})", a, " s")
    row(f"B ({args.label_b})", b, " s")
    row("A/B, pair by pair", ratios, "")


if __name__ == "__main__":
    main()
