#!/usr/bin/env python3
"""Where the example site's CPU goes per request, with the plugin attached and detached.

Reads two `perf script -F comm,tid,ip,sym` outputs (call stacks sampled with
`perf record -e cpu-clock --call-graph dwarf`) and prints, for each part of a request,
the CPU microseconds it took per request in each, and the difference; then the plugin's
share of the attached site's samples. A sample counts for the first part, in the order
below, that any frame of its stack belongs to.

    breakdown.py HZ SECONDS ATTACHED.txt ATTACHED_RPS DETACHED.txt DETACHED_RPS

HZ is perf's sampling frequency, SECONDS how long it recorded, *_RPS the requests per
second wrk measured meanwhile. scripts/profile.sh runs it.
"""

import sys
from collections import Counter

# (part, a substring of a frame's symbol): the first part that matches takes the sample.
PARTS = [
    ("plugin: on_request (find the visitor, decide the page's flags)",
     "Bandits as rocket::fairing::Fairing>::on_request"),
    ("plugin: on_response (settle the counts)",
     "Bandits as rocket::fairing::Fairing>::on_response"),
    ("plugin: the template's flag reads", "bandits_tera::register"),
    ("plugin: the template's flag sections", "bandits_tera::FlagSection"),
    ("plugin: other (VisitorFlags, cookie writes)", "bandits::"),
    ("Tera: rendering the template", "tera::tera::Tera::render"),
    ("Rocket: the rest of the handler and responder", "rocket::server::handle"),
    ("Rocket: Shield's headers", "Shield as rocket::fairing::Fairing>::on_response"),
    ("Rocket: parsing the request (headers, cookies)", "Request::from_hyp"),
    ("Rocket: writing the response", "send_response"),
    ("Rocket: routing and the rest of dispatch", "Rocket<rocket::phase::Orbit>>::dispatch"),
    ("hyper: reading requests (and the kernel's receive)", "poll_read"),
    ("hyper: flushing responses (and the kernel's send)", "poll_flush"),
    ("hyper: writing responses", "poll_write"),
    ("hyper: the rest", "hyper::"),
    ("tokio: scheduling, parking", "tokio::"),
]
OTHER = "everything else"


def stacks(path):
    """The sampled stacks of a `perf script` output, each a list of symbols."""
    stack = []
    with open(path, errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if stack:
                    yield stack
                stack = []
            elif line[0] in " \t":
                fields = line.split(None, 1)
                stack.append(fields[1].strip() if len(fields) > 1 else "?")
            else:
                stack = []
    if stack:
        yield stack


def per_request(path, hz, seconds, rps):
    """Microseconds of CPU per request, by part."""
    counts = Counter()
    for stack in stacks(path):
        part = next(
            (name for name, needle in PARTS if any(needle in frame for frame in stack)),
            OTHER,
        )
        counts[part] += 1
    scale = 1e6 / hz / (rps * seconds)
    return {part: n * scale for part, n in counts.items()}


def main(argv):
    if len(argv) != 7:
        sys.exit(__doc__)
    hz, seconds = float(argv[1]), float(argv[2])
    attached = per_request(argv[3], hz, seconds, float(argv[4]))
    detached = per_request(argv[5], hz, seconds, float(argv[6]))
    print("| part of a request | attached µs | detached µs | difference |")
    print("|---|---:|---:|---:|")
    for part in [name for name, _ in PARTS] + [OTHER]:
        a, d = attached.get(part, 0.0), detached.get(part, 0.0)
        print(f"| {part} | {a:.2f} | {d:.2f} | {a - d:+.2f} |")
    a, d = sum(attached.values()), sum(detached.values())
    print(f"| **total** | **{a:.2f}** | **{d:.2f}** | **{a - d:+.2f}** |")
    # A share of one run's samples does not move with the machine's speed, which drifts
    # between runs (and so between the attached and the detached run) by more than the
    # plugin costs.
    plugin = sum(us for part, us in attached.items() if part.startswith("plugin:"))
    print()
    print(f"The plugin's own code (the rows \"plugin:\"): {100 * plugin / a:.1f}% of the "
          "attached site's CPU samples.")


if __name__ == "__main__":
    main(sys.argv)
