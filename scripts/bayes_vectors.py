#!/usr/bin/env python3
"""Prints bandits/tests/data/bayes_vectors.json: each arm's probability of being best and
the expected loss of choosing it, under independent Beta posteriors, integrated by
SciPy's adaptive quadrature. `engine::stats::chances` (the Bayesian winner rule, and the
propensities of the Thompson policies) is checked against it
(`cargo test --workspace --test reference_vectors`).

    pip install scipy==1.17.1
    python3 scripts/bayes_vectors.py            # the file, as JSON
    python3 scripts/bayes_vectors.py --check    # exit 1 unless the file holds exactly it
"""
import json
import pathlib
import sys

import scipy
from scipy import integrate
from scipy.stats import beta as beta_dist

# (arms as (views, conversions), prior alpha, prior beta)
CASES = [
    ([(100, 4), (100, 9)], 1.0, 1.0),
    ([(1000, 37), (1000, 66), (1000, 41)], 1.0, 1.0),
    ([(2000, 80), (2000, 110)], 1.0, 1.0),
    ([(5000, 250), (5000, 251)], 1.0, 1.0),
    ([(20000, 800), (19000, 1000)], 1.0, 1.0),
    ([(0, 0), (0, 0)], 1.0, 1.0),
    ([(0, 0), (50, 10)], 1.0, 1.0),
    ([(300, 30), (280, 35), (310, 20), (290, 33)], 2.0, 20.0),
    ([(40, 0), (40, 40)], 0.5, 0.5),
]


def posteriors(arms, a, b):
    return [beta_dist(a + c, b + n - c) for n, c in arms]


def window(dist):
    mean, sd = dist.mean(), dist.std()
    return max(0.0, mean - 14 * sd), min(1.0, mean + 14 * sd)


def quad(f, lo, hi, points):
    inside = sorted(p for p in points if lo < p < hi)
    value, _ = integrate.quad(f, lo, hi, points=inside or None, limit=500,
                              epsabs=1e-14, epsrel=1e-12)
    return value


def case(arms, a, b):
    dists = posteriors(arms, a, b)
    edges = [x for d in dists for x in window(d)]
    best = []
    for i, d in enumerate(dists):
        lo, hi = window(d)
        others = [o for j, o in enumerate(dists) if j != i]

        def density(x, d=d, others=others):
            product = d.pdf(x)
            for o in others:
                product *= o.cdf(x)
            return product

        best.append(quad(density, lo, hi, edges))

    lo, hi = min(edges), max(edges)

    def above(x):
        product = 1.0
        for d in dists:
            product *= d.cdf(x)
        return 1.0 - product

    expected_max = lo + quad(above, lo, hi, edges)
    loss = [max(0.0, expected_max - d.mean()) for d in dists]
    return {
        "arms": [{"views": n, "conversions": c} for n, c in arms],
        "prior": {"alpha": a, "beta": b},
        "probability_best": best,
        "expected_loss": loss,
    }


def document():
    return {
        "generator": f"scripts/bayes_vectors.py, scipy {scipy.__version__} "
                     "(scipy.integrate.quad over scipy.stats.beta)",
        "chances": [case(*c) for c in CASES],
    }


def main():
    text = json.dumps(document(), indent=1) + "\n"
    path = pathlib.Path(__file__).resolve().parent.parent / "bandits/tests/data/bayes_vectors.json"
    if "--check" in sys.argv[1:]:
        if path.read_text() != text:
            print(f"{path} differs from what this script prints", file=sys.stderr)
            sys.exit(1)
        print(f"{path} matches")
        return
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
