"""Gallery search (issue 25): an index of any gallery, two-stage search, a search page.

Stages: :mod:`benchmark.search.store` (the index folder), :mod:`benchmark.search.build`
(``bench index``: encode a gallery into it, resumably), :mod:`benchmark.search.first_stage`
(the faiss index), :mod:`benchmark.search.search` (``bench search``: faiss, then the model's
full similarity on the top K), :mod:`benchmark.search.serve` (``bench serve``: the page).
"""
