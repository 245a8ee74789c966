"""A recorded-bytes test under other library versions: fails in CI, skips elsewhere, and says how
to re-record either way (issue 22: the golden checks must never switch themselves off in CI)."""

from __future__ import annotations

import pytest

from .recorded import image_library_versions, require_recorded_versions


def _moved() -> dict[str, str]:
    return {**image_library_versions(), "opencv": "0.0.1"}


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_version_mismatch_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failure:
        require_recorded_versions("golden.json: the hashes were", _moved())
    message = str(failure.value)
    assert "opencv 0.0.1 recorded" in message and "OGOR_RECORD_GOLDEN=1" in message
    assert "requirements.lock" in message


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_version_mismatch_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="OGOR_RECORD_GOLDEN=1"):
        require_recorded_versions("golden.json: the hashes were", _moved())


def test_the_recorded_versions_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_recorded_versions("golden.json: the hashes were", image_library_versions())
