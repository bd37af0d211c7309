"""Evaluation: bot suites (quality, empathy, advice, safety, attacks, latency), the classifier and crisis
suites, response selection, decoding and backend comparisons, and blind side-by-side sheets."""
