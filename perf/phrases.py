"""How well the rule-based attribute-phrase chunker (ViTAA's phrases, ``models/phrases.py``)
reads the synthetic captions, whose ground truth is known.

Each synthetic caption names every visible attribute of its identity with its colour (the hair
or ponytail, a hat, the upper garment, the lower one unless a dress, the shoes, a backpack, a
handbag). The expected phrases of a caption are those (attribute, colour) pairs (a shaved head:
(head, none)); the chunker's are (attribute of the phrase, the colour word in it, or none).
The table gives per attribute the precision and recall of the chunker's pairs against the
expected ones, counted as multisets per caption.

Example:
    python perf/phrases.py --ids 100
    python perf/phrases.py --root ~/.cache/toreid/demo-v1-ids260-views4-seed0/clean
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from models.encoders.vocabulary import split_words  # noqa: E402
from models.phrases import ATTRIBUTES, chunk  # noqa: E402
from ogor.synth.attributes import HAIR_COLOURS, PALETTE  # noqa: E402

COLOURS = set(PALETTE) | set(HAIR_COLOURS) | {"grey"}


def expected(attributes: dict) -> Counter:
    """The (attribute, colour) pairs a caption of this identity names."""
    pairs: Counter = Counter()
    pairs["head", None if attributes["hair_style"] == "bald" else attributes["hair_colour"]] += 1
    if attributes["hat"]:
        pairs["head", attributes["hat"]] += 1
    pairs["upper", attributes["upper_colour"]] += 1
    if attributes["lower_type"] != "dress":
        pairs["lower", attributes["lower_colour"]] += 1
    pairs["shoes", attributes["shoes_colour"]] += 1
    for bag in ("backpack", "handbag"):
        if attributes[bag]:
            pairs["bag", attributes[bag]] += 1
    return pairs


def found(caption: str) -> Counter:
    words = split_words(caption)
    pairs: Counter = Counter()
    for phrase in chunk(words):
        colours = [w for w in phrase.words(words) if w in COLOURS]
        pairs[phrase.attribute, colours[-1] if colours else None] += 1
    return pairs


def measure(root: Path) -> dict[str, dict[str, float]]:
    truth = json.loads((root / "synth-attributes.json").read_text(encoding="utf-8"))["images"]
    captions = {r["file_path"]: r["captions"] for r in
                json.loads((root / "reid_raw.json").read_text(encoding="utf-8"))}
    hits, extracted, wanted = Counter(), Counter(), Counter()
    count = 0
    for rel, entry in truth.items():
        want = expected(entry["attributes"])
        for caption in captions[rel]:
            got = found(caption)
            count += 1
            for (attribute, _), n in got.items():
                extracted[attribute] += n
            for (attribute, _), n in want.items():
                wanted[attribute] += n
            for key, n in (got & want).items():
                hits[key[0]] += n
    table = {a: {"precision": 100 * hits[a] / max(1, extracted[a]),
                 "recall": 100 * hits[a] / max(1, wanted[a]), "expected": wanted[a]}
             for a in ATTRIBUTES}
    total_hits, total_x, total_w = sum(hits.values()), sum(extracted.values()), sum(wanted.values())
    table["all"] = {"precision": 100 * total_hits / max(1, total_x),
                    "recall": 100 * total_hits / max(1, total_w), "expected": total_w}
    table["all"]["captions"] = count
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="an `ogor synth` dataset (default: make one)")
    parser.add_argument("--ids", type=int, default=100, help="identities of the made dataset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            from ogor.synth import synthesize

            root = Path(tmp) / "synth"
            synthesize(root, ids=args.ids, views=2, seed=0)
        table = measure(root)
    print(f"attribute phrases of {table['all']['captions']} synthetic captions ({root})")
    print("| attribute | expected | precision % | recall % |")
    print("|---|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['expected']} | {row['precision']:.1f} | {row['recall']:.1f} |")


if __name__ == "__main__":
    main()
