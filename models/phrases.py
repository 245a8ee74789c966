"""A rule-based noun-phrase chunker that finds a caption's attribute phrases (for ViTAA).

ViTAA (Wang et al., ECCV 2020) aligns each image attribute branch (head, upper body, lower body,
shoes, bag) with the caption's phrases about that attribute; its code extracts noun phrases with
a parser and files them by their head noun. We need no model download at run time, so the
chunker here is a closed lexicon plus two rules, over the words of
:func:`models.encoders.vocabulary.split_words`:

1. a phrase ends at an *attribute noun*: a word of :data:`ATTRIBUTE_NOUNS`, which also gives the
   phrase its attribute ("hair" -> head, "jeans" -> lower, "rucksack" -> bag, ...);
2. it extends to the left over modifiers (colours, materials, "long", "knee-length", ...) and
   stops at a function word or verb of :data:`STOP_WORDS`, at another attribute noun, or after
   :data:`MAX_MODIFIERS` modifiers ("a pair of yellow shoes" -> "yellow shoes"; "He has long
   blonde hair" -> "long blonde hair").

Words of no attribute (the person, "feet", "hand") make no phrase. On English person
descriptions this finds the garment phrases with their colours; it misses phrases whose head
noun is not in the lexicon and keeps a stray modifier that is not a stop word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The attributes, in ViTAA's order (the image branches and text phrases use this order).
ATTRIBUTES: tuple[str, ...] = ("head", "upper", "lower", "shoes", "bag")

ATTRIBUTE_NOUNS: dict[str, str] = {
    **dict.fromkeys(("hair", "ponytail", "head", "hat", "cap", "beanie", "helmet", "hood",
                     "glasses", "sunglasses", "bun", "braid", "ponytails"), "head"),
    **dict.fromkeys(("shirt", "t-shirt", "tshirt", "top", "jacket", "coat", "sweater",
                     "jumper", "pullover", "hoodie", "blouse", "vest", "dress", "sweatshirt",
                     "cardigan", "blazer", "tank", "uniform", "suit", "windbreaker"), "upper"),
    **dict.fromkeys(("trousers", "pants", "jeans", "shorts", "skirt", "leggings", "slacks",
                     "capris", "tights", "sweatpants", "joggers"), "lower"),
    **dict.fromkeys(("shoes", "sneakers", "boots", "sandals", "heels", "slippers", "flats",
                     "loafers", "trainers", "footwear", "shoe", "sneaker", "boot"), "shoes"),
    **dict.fromkeys(("bag", "handbag", "backpack", "rucksack", "purse", "satchel", "suitcase",
                     "luggage", "tote", "briefcase", "bags"), "bag"),
}

STOP_WORDS: frozenset[str] = frozenset("""
a an the and or but with without in on of over under into onto at by for from to as
is are was were be been being has have had having wears wear wearing wore worn carries carry
carrying carried holds hold holding held dressed seen walks walk walking along also plus
he she his her hers they their them him it its this that these those who which while
there here pair one some very just then than too man woman guy lady person pedestrian male
female boy girl child people young old
""".split())
MAX_MODIFIERS = 4


@dataclass(frozen=True)
class Phrase:
    """Words ``start:end`` of a caption (the head noun is ``end - 1``), about ``attribute``."""

    start: int
    end: int
    attribute: str

    def words(self, words: Sequence[str]) -> list[str]:
        return list(words[self.start:self.end])


def chunk(words: Sequence[str]) -> list[Phrase]:
    """The attribute phrases of a caption's words, left to right (see the module docstring)."""
    phrases = []
    for end, word in enumerate(words):
        attribute = ATTRIBUTE_NOUNS.get(word)
        if attribute is None:
            continue
        start = end
        while (start > 0 and end - start < MAX_MODIFIERS and words[start - 1] not in STOP_WORDS
               and words[start - 1] not in ATTRIBUTE_NOUNS):
            start -= 1
        phrases.append(Phrase(start, end + 1, attribute))
    return phrases


def attribute_spans(words: Sequence[str]) -> dict[str, list[Phrase]]:
    """Phrases grouped by attribute (every attribute a key, possibly with no phrase)."""
    spans: dict[str, list[Phrase]] = {a: [] for a in ATTRIBUTES}
    for phrase in chunk(words):
        spans[phrase.attribute].append(phrase)
    return spans
