#!/usr/bin/env python3
"""Prints the `sample_ratio` section of bandits/tests/data/sequential_and_srm_vectors.json:
SciPy's chi-square goodness-of-fit test of the arms' views against the split they were
meant to get, the figures `engine::stats::sample_ratio_test` is checked against
(`cargo test -p bandits --test reference_vectors`).

    pip install scipy==1.17.1
    python3 scripts/srm_vectors.py            # the section, as JSON
    python3 scripts/srm_vectors.py --check    # exit 1 unless the file holds exactly it
"""
import json
import pathlib
import sys

from scipy.stats import chisquare

CASES = [
    ([5000, 5000], [0.5, 0.5]),
    ([5100, 4900], [0.5, 0.5]),
    ([5200, 4800], [0.5, 0.5]),
    ([2000, 3000, 5000], [0.2, 0.3, 0.5]),
    ([2150, 2900, 4950], [0.2, 0.3, 0.5]),
    ([9050, 950], [0.9, 0.1]),
    ([8800, 1200], [0.9, 0.1]),
    ([12, 9], [0.5, 0.5]),
    ([100, 120, 80, 100], [0.25, 0.25, 0.25, 0.25]),
    ([33340, 33330, 33330], [1 / 3, 1 / 3, 1 / 3]),
]


def section():
    out = []
    for views, weights in CASES:
        total = sum(views)
        expected = [total * w / sum(weights) for w in weights]
        result = chisquare(views, f_exp=expected)
        out.append(
            {
                "views": views,
                "weights": weights,
                "statistic": float(result.statistic),
                "p_value": float(result.pvalue),
            }
        )
    return out


def main():
    made = section()
    if "--check" in sys.argv:
        path = pathlib.Path(__file__).parent.parent / "bandits/tests/data/sequential_and_srm_vectors.json"
        stored = json.loads(path.read_text())["sample_ratio"]
        same = len(stored) == len(made) and all(
            a["views"] == b["views"]
            and a["weights"] == b["weights"]
            and abs(a["statistic"] - b["statistic"]) <= 1e-9 * max(1.0, abs(b["statistic"]))
            and abs(a["p_value"] - b["p_value"]) <= 1e-12 + 1e-9 * abs(b["p_value"])
            for a, b in zip(stored, made)
        )
        print("the file holds SciPy's figures" if same else "the file differs from SciPy's figures")
        sys.exit(0 if same else 1)
    json.dump(made, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
