"""``perf/search.py --quick`` runs every part of the script (index build per kind, timed
searches, recall against exact, the ICFG-scale comparison), so that the script cannot rot.
Its figures are quoted from a full run, never asserted here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "perf" / "search.py"


def test_the_quick_run_builds_every_index_kind_and_compares_with_exact(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = importlib.util.spec_from_file_location("perf_search", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "search.json"
    result = module.main(["--quick", "--workdir", str(tmp_path / "work"), "--json-out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    [gallery] = result["galleries"]
    assert [row["kind"] for row in gallery["rows"]] == ["flat", "ivf", "hnsw"]
    flat = gallery["rows"][0]
    assert flat["recall_at_10"] == flat["final_top10_agreement"] == 1.0  # exact vs itself
    assert all(0.0 <= row["recall_at_10"] <= 1.0 and 0.0 <= row["final_top10_agreement"] <= 1.0
               and row["faiss_bytes"] > 0 for row in gallery["rows"])
    # each kind's search peak is its own; the run's peak covers the build and every search
    assert all(0 < row["search_peak_rss_bytes"] <= gallery["peak_rss_bytes"]
               for row in gallery["rows"])
    assert gallery["build_peak_rss_bytes"] <= gallery["peak_rss_bytes"]
    assert result["icfg"]["exact_total"] > 0 and result["icfg"]["two_stage_total"] > 0
    printed = capsys.readouterr().out
    assert "ICFG-PEDES scale" in printed and "R@10/ex" in printed
    assert not (tmp_path / "work" / "gallery-2000").exists()  # big temporary files removed
