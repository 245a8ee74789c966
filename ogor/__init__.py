"""OGOR: the occlusion generator for text-based occluded person re-identification.

It makes data: occlusion instance libraries (OIL) and Occluded-* versions of the CUHK-PEDES,
ICFG-PEDES and RSTPReid datasets, each with a manifest that records every paste.
"""

__version__ = "0.1.0"
