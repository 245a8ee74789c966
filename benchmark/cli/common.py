"""Option parsing and printing shared by the ``bench`` commands."""

from __future__ import annotations

import click

from toreid.errors import ToreidError


def number_list(text: str, option: str, kind: type = int) -> list:
    """Comma-separated numbers of ``kind`` (int or float); a one-line error names ``option``."""
    what = "integers" if kind is int else "numbers"
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ToreidError(f"{option}: expected comma-separated {what}, got {text!r}") from None
    if not values:
        raise ToreidError(f"{option}: no value given")
    return values


def int_list(text: str, option: str) -> list[int]:
    return number_list(text, option, int)


def float_list(text: str, option: str) -> list[float]:
    return number_list(text, option, float)


def parse_model_opts(items: tuple[str, ...]) -> dict:
    """``KEY=VALUE`` pairs; values parsed as JSON when they parse (numbers, null, lists)."""
    import json

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ToreidError(f"--model-opt: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def print_metrics_rows(record: dict) -> None:
    """The same rows bench eval prints: all queries, then occluded / clean."""
    print_metric_table([("all", record["test"])] + list((record.get("occlusion") or {}).items()))


def print_metric_table(rows: list[tuple[str, dict]]) -> None:
    """One line per query group: count, R@1/5/10, mAP, mINP, Rsum."""
    click.echo(f"{'queries':<10} {'n':>6} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'mAP':>7} "
               f"{'mINP':>7} {'Rsum':>7}")
    for name, m in rows:
        if not m.get("num_queries"):
            click.echo(f"{name:<10} {0:>6}")
            continue
        click.echo(f"{name:<10} {m['num_queries']:>6} {m['R@1']:7.2f} {m['R@5']:7.2f} "
                   f"{m['R@10']:7.2f} {m['mAP']:7.2f} {m['mINP']:7.2f} {m['Rsum']:7.2f}")
