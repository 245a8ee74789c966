"""The caption writer: sentences generated from an identity's attributes, in several templates.

The captions name what occlusion hides (shoes, trousers, bags), which is the point of TO-ReID,
and hold nothing that could pass for a real caption of a real person.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ogor.synth.attributes import PersonAttributes

# Caption vocabulary: every garment phrase is "<colour> [modifier] <noun>", so a reader (and the
# colour test) finds the colour word right before the garment it describes.
UPPER_NOUNS: dict[str, tuple[str, ...]] = {
    "t-shirt": ("t-shirt", "short-sleeved t-shirt", "tee shirt"),
    "shirt": ("long-sleeved shirt", "shirt", "button-up shirt"),
    "sweater": ("sweater", "jumper", "pullover"),
    "jacket": ("jacket", "zip-up jacket"),
    "coat": ("long coat", "coat", "knee-length coat"),
    "dress": ("dress", "knee-length dress"),
}
LOWER_NOUNS: dict[str, tuple[str, ...]] = {
    "trousers": ("trousers", "pants", "long pants"),
    "jeans": ("jeans", "denim jeans"),
    "shorts": ("shorts",),
    "skirt": ("skirt", "short skirt"),
}
SHOE_NOUNS: tuple[str, ...] = ("shoes", "sneakers")
HAT_NOUNS: tuple[str, ...] = ("hat", "cap")
BAG_NOUNS: tuple[str, ...] = ("handbag", "bag")
BACKPACK_NOUNS: tuple[str, ...] = ("backpack", "rucksack")
PERSON_NOUNS: dict[str, tuple[str, ...]] = {
    "male": ("man", "young man", "guy", "male pedestrian"),
    "female": ("woman", "young woman", "lady", "female pedestrian"),
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _caption(person: PersonAttributes, template: int, rng: np.random.Generator) -> str:
    """One caption of ``person`` in phrasing number ``template`` (0..5)."""
    noun = _pick(rng, PERSON_NOUNS[person.gender])
    he, his = ("He", "his") if person.gender == "male" else ("She", "her")
    if person.hair_style == "bald":
        hair = "a shaved head"
    elif person.hair_style == "ponytail":
        hair = f"{_article(person.hair_colour or 'b')} {person.hair_colour} ponytail"
    else:
        hair = f"{person.hair_style} {person.hair_colour} hair"
    upper_noun = _pick(rng, UPPER_NOUNS[person.upper_type])
    upper = f"{_article(person.upper_colour)} {person.upper_colour} {upper_noun}"
    garments = [upper]
    if person.lower_type != "dress":
        lower = f"{person.lower_colour} {_pick(rng, LOWER_NOUNS[person.lower_type])}"
        if person.lower_type == "skirt":
            lower = f"{_article(person.lower_colour)} {lower}"
        garments.append(lower)
    shoe_noun = _pick(rng, SHOE_NOUNS)
    shoes = _pick(rng, (f"{person.shoes_colour} {shoe_noun}",
                        f"a pair of {person.shoes_colour} {shoe_noun}"))
    finite: list[str] = []  # "carries a black backpack"
    participle: list[str] = []  # "carrying a black backpack"
    if person.hat:
        thing = f"{_article(person.hat)} {person.hat} {_pick(rng, HAT_NOUNS)}"
        finite.append(f"wears {thing}")
        participle.append(f"wearing {thing}")
    if person.backpack:
        thing = f"{_article(person.backpack)} {person.backpack} {_pick(rng, BACKPACK_NOUNS)}"
        finite.append(f"carries {thing}")
        participle.append(f"carrying {thing}")
    if person.handbag:
        thing = f"{_article(person.handbag)} {person.handbag} {_pick(rng, BAG_NOUNS)}"
        verb = _pick(rng, (("holds", "holding"), ("carries", "carrying")))
        finite.append(f"{verb[0]} {thing} in {his} hand")
        participle.append(f"{verb[1]} {thing}")
    extra = f" {he} {_join(finite)}." if finite else ""
    if template == 0:
        return f"A {noun} with {hair}, wearing {_join([*garments, shoes])}.{extra}"
    if template == 1:
        return f"The {noun} has {hair} and is dressed in {_join(garments)} with {shoes}.{extra}"
    if template == 2:
        walk = f", {_join(participle)}" if participle else ""
        return (f"{_article(noun).capitalize()} {noun} in {_join(garments)} walks along{walk}. "
                f"{he} has {hair} and wears {shoes}.")
    if template == 3:
        return (f"This {noun} is wearing {_join(garments)}, with {shoes} on {his} feet. "
                f"{he} {_join([f'has {hair}', *finite])}.")
    if template == 4:
        over = f" over {garments[1]}" if len(garments) > 1 else ""
        tail = f", {_join(participle)}" if participle else ""
        return (f"{_article(noun).capitalize()} {noun} with {hair} wearing {garments[0]}{over} "
                f"and {shoes}{tail}.")
    return f"{_article(noun).capitalize()} {noun} is seen in {_join([*garments, shoes])}. " + (
        f"{he} {_join([f'has {hair}', *finite])}."
    )


CAPTION_TEMPLATES = 6


def make_captions(person: PersonAttributes, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` captions of one image, each in a different phrasing."""
    templates = rng.permutation(CAPTION_TEMPLATES)[:count]
    return [_caption(person, int(t), rng) for t in templates]
