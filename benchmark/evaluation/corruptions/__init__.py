"""Corruptions beyond occlusion for ``bench robustness``: surveillance image corruptions of the
gallery (:mod:`.image`) and witness-text perturbations of the queries (:mod:`.text`), with their
severity table (:mod:`.table`, ``severities.json``) and the cached derived test sets
(:mod:`.derive`)."""
