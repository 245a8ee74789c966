"""The benchmark harness: train, evaluate and rank text-to-image person retrieval models.

``bench run`` trains every (model, dataset, seed), writes ``runs/<dataset>/<model>/seed<k>/`` and
prints the leaderboard; ``bench table`` renders the leaderboard (Table 2 of the MGCC paper) from
run folders. The library modules are importable on their own: :mod:`benchmark.evaluation.metrics`
(pure metrics), :mod:`benchmark.evaluation.evaluate` (chunked exact evaluation),
:mod:`benchmark.training.loop` (the loop).
"""
