"""The loss library: pure functions of features and labels, one module per loss family.

Each loss is written once here and tested against a naive loop and a hand-computed case
(``tests/models/test_losses.py``); methods only choose which ones to combine and with which
weights.

* :mod:`models.losses.contrastive`: :func:`info_nce` (CLIP, MGCC) and IRRA's :func:`sdm_loss`.
* :mod:`models.losses.cmpm`: :func:`cmpm_loss` and :func:`cmpc_loss` (Zhang & Lu, ECCV 2018).
* :mod:`models.losses.identity`: :func:`identity_loss` (ID / instance classification).
* :mod:`models.losses.ranking`: the bidirectional ranking (triplet) loss with hardest
  negatives, :func:`ranking_loss` (Dual-Path stage II, VSE++), and LGUR's sampled semi-hard
  form, :func:`semi_hard_ranking_loss_from_scores`.
* :mod:`models.losses.instance`: Dual-Path's :func:`instance_loss` (the ID loss through one
  classifier shared by the image and the text features, each modality's term returned apart).
* :mod:`models.losses.compound_ranking`: SSAN's :func:`compound_ranking_loss` (semi-hard
  triplets with the own caption, plus a weak term with another caption of the same person) and
  :func:`hard_triplet_loss`, the hard-negative form of the same code (CFine).
* :mod:`models.losses.rde`: RDE's triplet alignment loss and consensus division.
* :mod:`models.losses.tbps`: TBPS-CLIP's N-ITC, R-ITC, C-ITC and SimCLR losses.
* :mod:`models.losses.alignment`: ViTAA's :func:`alignment_loss` and
  :func:`normalized_identity_loss`.
* :mod:`models.losses.momentum`: TBPS's :func:`queue_info_nce` (momentum-queue contrast) and
  :func:`global_align_loss`.
"""

from models.losses.alignment import alignment_loss, normalized_identity_loss
from models.losses.cmpm import cmpc_loss, cmpm_loss
from models.losses.compound_ranking import compound_ranking_loss, hard_triplet_loss
from models.losses.contrastive import info_nce, sdm_loss
from models.losses.identity import identity_loss
from models.losses.instance import instance_loss
from models.losses.momentum import global_align_loss, queue_info_nce
from models.losses.ranking import (
    ranking_loss,
    ranking_loss_from_scores,
    semi_hard_ranking_loss_from_scores,
)

__all__ = ["alignment_loss", "cmpc_loss", "cmpm_loss", "compound_ranking_loss",
           "global_align_loss", "hard_triplet_loss", "identity_loss", "info_nce", "instance_loss",
           "normalized_identity_loss", "queue_info_nce", "ranking_loss",
           "ranking_loss_from_scores", "sdm_loss", "semi_hard_ranking_loss_from_scores"]
