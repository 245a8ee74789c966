"""NAFS: contextual non-local alignment over full-scale representations (Gao et al., 2021),
Table 2's "NAFS RN50-BERT" row.

Written from the paper's description and its public code (TencentYoutuResearch/PersonReID-NAFS,
read to learn); where we differ, the docstrings say so.

* **Staircase full-scale image features.** A ResNet-50 whose deeper stages are copied into
  branches that fork at different depths (code: ``SfeNet``): the trunk (stages 3-4) gives the
  global feature; a branch forking after stage 2 (its own stages 3-4) is cut into
  ``parts_fine`` horizontal stripes (code ``part2`` = 3), and a branch forking after stage 3
  (its own stage 4) into ``parts_coarse`` stripes (``part3`` = 2): finer scales come from
  shallower forks, hence the staircase. During training each branch's input stripes are
  shuffled in height and put back after the branch (code: ``height_shuffle``), so a stripe's
  feature cannot lean on its neighbours. The branches start as copies of the (pretrained)
  trunk stages, as the code loads the ImageNet weights into them. Stage 4 and its copies run
  at stride 1 (code: ``layer4`` and both branches' stage 4 built with ``stride=1``): a 24x8
  map instead of 12x4 at 384x128.
* **Locality-constrained text features.** BERT over the whole caption gives the global
  ``[CLS]`` and the word-piece states; each sub-sentence (the caption cut at ``, . ; ! ?``) is
  encoded again *on its own* by the same BERT and gives its ``[CLS]`` (code: ``sep_tokens``), so
  a local phrase's feature depends only on its own words. The first ``max_sub_sentences``
  pieces are kept (code: ``n_sep = 2`` in ``train.py`` and ``test.py``). Text local features
  are ``[global; sub-sentences; word pieces]``, each mapped to a key and a value (linear +
  LayerNorm), where the global slot is the caption's *joint* feature (``[CLS]`` projected and
  batch-normalised, code: ``global_text_feat``), not the raw ``[CLS]``.
* **Contextual non-local attention.** Image local features ``[global; stripes]`` get a query and
  a value (one linear each, per part). For an (image, text) pair, each image part attends over
  all text features at every scale: ``a = softmax_t(lambda * l2norm_r(LeakyReLU(cos(k_t,
  q_r))))``, the attended text ``c_r = sum_t a_rt v_t``, and the local similarity is the mean
  over parts of ``cos(value_r, c_r)`` (code: ``func_attention_MxN``, ``focal_type none``).
* **Similarity** = cosine of the global features + the local similarity (code:
  ``sim_cosine_global + sim_cosine``).
* **Losses** (code: ``--CMPM --CMPC --CONT``): CMPM + CMPC on the global features and the
  contrastive matching loss on the local similarity: CMPM's KL on ``lambda * S_local``, weight
  ``lambda_cont``, image-to-text only (each image's softmax over the batch's captions; the
  code's text-to-image term is commented out in ``Loss.contrastive_loss``).
* **Re-ranking by visual neighbours** (evaluation option ``rerank_k``, code ``--reranking``
  with K = 5): :func:`visual_neighbour_rerank`; 0 turns it off. It is part of the model config,
  so a run's ``config.json`` records whether its numbers were re-ranked. It re-ranks text
  queries over the images of each similarity call (the evaluator passes the whole gallery);
  image-to-text scores (``--i2t``) are those re-ranked scores transposed, as NAFS re-ranks
  text-to-image retrieval only. The code's ``topk()`` intersects a row's top-K *text* indices
  with each image's top-K *image* indices (``sim`` is images x texts there); ours intersects
  image indices with image indices, the comparison the method describes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.distributed import gather
from models.encoders.resnet import ResNetEncoder
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import cmpc_loss, cmpm_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel

SUB_SENTENCE_MARKS = (",", ".", ";", "!", "?")


@dataclass
class NAFSConfig(TwoTowerConfig):
    """NAFS; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        parts_fine, parts_coarse: stripes of the branches forking after stage 2 and 3 (code
            ``part2`` 3, ``part3`` 2).
        max_sub_sentences: sub-sentences kept per caption, the first ones (code ``n_sep``
            2); the rest are dropped.
        lambda_softmax: the attention's inverse temperature and the contrastive loss's scale
            (code: 20).
        lambda_cont: weight of the local contrastive loss (train.sh: 0.1).
        cmpm_weight, cmpc_weight: weights of CMPM and CMPC on the global features.
        rerank_k: re-rank by visual neighbours with this K at evaluation (0: off; code: 5).
    """

    family: str = "nafs"
    text_encoder: str = "bert"
    embed_dim: int = 768
    parts_fine: int = 3
    parts_coarse: int = 2
    max_sub_sentences: int = 2
    lambda_softmax: float = 20.0
    lambda_cont: float = 0.1
    cmpm_weight: float = 1.0
    cmpc_weight: float = 1.0
    rerank_k: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_encoder != "resnet" or self.text_encoder != "bert":
            raise ModelError("nafs is defined on a ResNet image encoder and a BERT text encoder, "
                             f"got {self.image_encoder} + {self.text_encoder}")
        for name in ("parts_fine", "parts_coarse", "max_sub_sentences"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        if int(self.rerank_k) < 0:
            raise ModelError(f"rerank_k must be >= 0 (0: no re-ranking), got {self.rerank_k}")


def stripe_bounds(height: int, parts: int) -> list[tuple[int, int]]:
    """Row ranges of ``parts`` horizontal stripes of a map ``height`` rows high (the last
    takes the remainder, as the code's ``get_index_pair_list``)."""
    if height < parts:
        raise ModelError(f"a feature map {height} rows high cannot be cut into {parts} stripes")
    step = height // parts
    return [(i * step, (i + 1) * step if i < parts - 1 else height) for i in range(parts)]


def _shuffle_rows(x: Tensor, bounds: list[tuple[int, int]], order: list[int]) -> Tensor:
    return torch.cat([x[:, :, bounds[i][0]:bounds[i][1]] for i in order], dim=2)


def _stripe_features(branch: nn.Module, x: Tensor, parts: int, shuffle: bool) -> list[Tensor]:
    """Average-pooled stripes of ``branch(x)``; with ``shuffle`` the input's stripes go through
    the branch in a random order and the output's are put back in place."""
    if not shuffle:
        out = branch(x)
    else:
        order = torch.randperm(parts).tolist()
        shuffled = _shuffle_rows(x, stripe_bounds(x.shape[2], parts), order)
        out = branch(shuffled)
        out_bounds = stripe_bounds(out.shape[2], parts)
        pieces = {original: out[:, :, a:b]
                  for (a, b), original in zip(out_bounds, order, strict=True)}
        out = torch.cat([pieces[i] for i in range(parts)], dim=2)
    return [out[:, :, a:b].mean(dim=(2, 3)) for a, b in stripe_bounds(out.shape[2], parts)]


def non_local_similarity(query: Tensor, value: Tensor, key: Tensor, text_value: Tensor,
                         text_mask: Tensor, lambda_softmax: float) -> Tensor:
    """Local similarity ``[Q, G]`` of texts (``key``/``text_value [Q, T, D]``, ``text_mask
    [Q, T]``) with images (part ``query``/``value [G, R, D]``); see the module docstring."""
    q = F.normalize(query.float(), dim=-1)
    k = F.normalize(key.float(), dim=-1)
    raw = F.leaky_relu(torch.einsum("qtd,grd->qgrt", k, q), 0.1)
    raw = F.normalize(raw, dim=2)  # over the image parts, as the code's l2norm(attn, 2)
    raw = (raw * lambda_softmax).masked_fill(~text_mask[:, None, None, :], float("-inf"))
    attention = raw.softmax(dim=-1)
    attended = F.normalize(torch.einsum("qgrt,qtd->qgrd", attention, text_value.float()), dim=-1)
    return torch.einsum("qgrd,grd->qg", attended, F.normalize(value.float(), dim=-1)) / \
        query.shape[1]


def visual_neighbour_rerank(scores: Tensor, image_similarity: Tensor, k: int) -> Tensor:
    """NAFS's re-ranking: ``scores [Q, G] + Jaccard(N_k(q), N_k(g))``.

    ``N_k(q)`` are the ``k`` gallery images the query ranks first; ``N_k(g)`` the ``k`` images
    most similar to image ``g`` (``image_similarity [G, G]``, itself included). An image whose
    visual neighbours are the query's first answers rises: a person's other views support
    each other. ``k`` is capped at the gallery size.
    """
    k = min(int(k), scores.shape[1])
    query_top = torch.zeros_like(scores, dtype=torch.float32)
    query_top.scatter_(1, scores.topk(k, dim=1).indices, 1.0)
    image_top = torch.zeros_like(image_similarity, dtype=torch.float32)
    image_top.scatter_(1, image_similarity.topk(k, dim=1).indices, 1.0)
    shared = query_top @ image_top.t()
    return scores + shared / (2 * k - shared)


def local_contrastive_loss(similarity: Tensor, pids: Tensor, scale: float,
                           epsilon: float = 1e-8) -> Tensor:
    """NAFS's contrastive matching loss on the local similarity ``[images, texts]``: the mean
    over images of ``KL(softmax_t(scale * S) || q)``, ``q`` the same-person distribution.

    Image-to-text only: the code's text-to-image term is commented out
    (``utils/metric.py``, ``Loss.contrastive_loss``), so a caption may rank the batch's images
    wrongly at no cost as long as each image ranks the captions right.
    """
    same = (pids[:, None] == pids[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    scaled = similarity.float() * scale
    kl = scaled.softmax(1) * (scaled.log_softmax(1) - torch.log(target + epsilon))
    return kl.sum(1).mean()


class NAFS(TwoTowerModel):
    """NAFS (module docstring); ``forward`` returns {"cmpm", "cmpc", "local"}."""

    batch_gathers = ("image global + part tokens", "text global + word tokens", "person ids")
    config: NAFSConfig

    def __init__(self, config: NAFSConfig) -> None:
        super().__init__(config)
        encoder = self.image_encoder
        assert isinstance(encoder, ResNetEncoder)
        encoder.set_last_stride_one()  # before the copies: the branches' stage 4 too
        net, dim = encoder.net, int(config.embed_dim)
        # staircase: copies of the trunk's later stages, forking after stage 2 and after stage 3
        self.fine_branch = nn.Sequential(copy.deepcopy(net.layer3), copy.deepcopy(net.layer4))
        self.coarse_branch = copy.deepcopy(net.layer4)
        channels = encoder.feature_dim
        parts = int(config.parts_fine) + int(config.parts_coarse)
        self.part_projections = nn.ModuleList(nn.Linear(channels, dim) for _ in range(parts))
        self.image_bottleneck = nn.BatchNorm1d(dim)
        self.text_bottleneck = nn.BatchNorm1d(dim)
        for bn in (self.image_bottleneck, self.text_bottleneck):
            bn.bias.requires_grad_(False)
        self.part_query = nn.ModuleList(nn.Linear(dim, dim) for _ in range(parts + 1))
        self.part_value = nn.ModuleList(nn.Linear(dim, dim) for _ in range(parts + 1))
        text_dim = int(self.text_encoder.feature_dim)
        if text_dim != dim:  # the joint global feature shares the keys' input with BERT's
            raise ModelError(f"nafs puts the {dim}-d joint text feature beside BERT's "
                             f"{text_dim}-d states: embed_dim must equal BERT's width")
        self.text_key = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim))
        self.text_value = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim))
        self.cmpc_weight: nn.Parameter | None = None
        if config.num_classes is not None and config.cmpc_weight > 0:
            self.cmpc_weight = nn.Parameter(torch.empty(dim, config.num_classes))
            nn.init.xavier_uniform_(self.cmpc_weight)

    # -- image side
    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        """pooled: global (BN'd); tokens: ``[B, 2, R + 1, D]`` flattened to ``[B, 2(R+1), D]``:
        the parts' queries then their values (global first, fine stripes, coarse stripes)."""
        net, config = self.image_encoder.net, self.config
        x = net.maxpool(net.relu(net.bn1(net.conv1(pixels))))
        stage2 = net.layer2(net.layer1(x))
        stage3 = net.layer3(stage2)
        global_feature = self.image_bottleneck(
            self.image_projection(net.layer4(stage3).mean(dim=(2, 3))))
        shuffle = self.training
        stripes = (_stripe_features(self.fine_branch, stage2, config.parts_fine, shuffle)
                   + _stripe_features(self.coarse_branch, stage3, config.parts_coarse, shuffle))
        parts = [global_feature] + [
            fc(s) for fc, s in zip(self.part_projections, stripes, strict=True)]
        queries = torch.stack([fc(p) for fc, p in zip(self.part_query, parts, strict=True)], dim=1)
        values = torch.stack([fc(p) for fc, p in zip(self.part_value, parts, strict=True)], dim=1)
        tokens = torch.cat([queries, values], dim=1)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ImageFeatures(global_feature, tokens, mask, mask.float() / mask.shape[1])

    # -- text side
    def sub_sentences(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Each caption's sub-sentences as their own BERT inputs: ``(rows [N, L'], owner [N],
        slot [N])`` (caption and position of each sub-sentence)."""
        pad_id, cls_id, sep_id = self.text_encoder.special_ids
        tokenizer = self.text_encoder._tokenizer  # the encoder's WordPiece tokenizer
        marks = {int(i) for i in tokenizer.convert_tokens_to_ids(list(SUB_SENTENCE_MARKS))
                 if i is not None and i != tokenizer.unk_token_id}
        rows, owner, slot = [], [], []
        for b, ids in enumerate(tokens.tolist()):
            current: list[int] = []
            pieces: list[list[int]] = []
            for i in ids[1:]:
                if i in (pad_id, sep_id):
                    break
                if i in marks:
                    if current:
                        pieces.append(current)
                    current = []
                else:
                    current.append(i)
            if current:
                pieces.append(current)
            for s, piece in enumerate((pieces or [[]])[:self.config.max_sub_sentences]):
                rows.append([cls_id, *piece, sep_id])
                owner.append(b)
                slot.append(s)
        width = max(len(r) for r in rows)
        out = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for n, row in enumerate(rows):
            out[n, :len(row)] = torch.tensor(row)
        device = tokens.device
        return out.to(device), torch.tensor(owner, device=device), torch.tensor(slot, device=device)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        """pooled: global (BN'd); tokens: ``[B, T, 2D]``, the key then the value of each of
        ``[global; sub-sentences; word pieces]`` side by side in the feature dimension.

        Side by side, not one after the other along the tokens: caption batches are padded
        at the end of the token dimension (``Features.cat``, the gather of a distributed run),
        which would move a split at ``T`` and pair keys with the wrong values (the scores
        then depended on how the captions were batched)."""
        raw = self.text_encoder(tokens)
        global_feature = self.text_bottleneck(self.text_projection(raw.pooled))
        rows, owner, slot = self.sub_sentences(tokens)
        local_cls = self.text_encoder(rows).pooled  # each sub-sentence on its own
        batch, width = tokens.shape[0], int(self.config.max_sub_sentences)
        sub = local_cls.new_zeros(batch, width, local_cls.shape[-1])
        sub[owner, slot] = local_cls
        sub_mask = torch.zeros(batch, width, dtype=torch.bool, device=tokens.device)
        sub_mask[owner, slot] = True
        raw_local = torch.cat([global_feature[:, None], sub, raw.tokens], dim=1)
        mask = torch.cat([torch.ones_like(sub_mask[:, :1]), sub_mask, raw.mask], dim=1)
        keys, values = self.text_key(raw_local), self.text_value(raw_local)
        tokens_out = torch.cat([keys, values], dim=-1)
        attention = mask.float() / mask.float().sum(dim=1, keepdim=True)
        return TextFeatures(global_feature, tokens_out, mask, attention)

    # -- retrieval
    def _local(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        half_i, dim = image.num_tokens // 2, text.tokens.shape[-1] // 2
        return non_local_similarity(
            image.tokens[:, :half_i], image.tokens[:, half_i:], text.tokens[..., :dim],
            text.tokens[..., dim:], text.mask, float(self.config.lambda_softmax))

    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        global_sim = F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()
        return global_sim + self._local(text, image)

    def _entries_per_pair(self, text: TextFeatures, image: ImageFeatures) -> int:
        return max(1, text.num_tokens * image.num_tokens + image.tokens.shape[-1] *
                   image.num_tokens)

    def similarity(self, text_feats: TextFeatures, image_feats: ImageFeatures,
                   chunk: int | tuple[int, int] | None = None) -> Tensor:
        """The chunked similarity, re-ranked by visual neighbours over the images given when
        ``rerank_k > 0`` (the evaluator passes the whole gallery for each block of queries)."""
        scores = super().similarity(text_feats, image_feats, chunk)
        if int(self.config.rerank_k) == 0:
            return scores
        images = F.normalize(image_feats.pooled.float(), dim=-1)
        return visual_neighbour_rerank(scores, images @ images.t(), int(self.config.rerank_k))

    # -- training
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config, pids = self.config, batch["pids"]
        image = self.encode_images(batch["images"])
        text = self.encode_texts(batch["tokens"])
        # CMPM and the local contrast compare all pairs of the (global) batch; CMPC is per sample
        every_image, every_text, every_pid = image.gathered(), text.gathered(), gather(pids)
        losses = {"cmpm": config.cmpm_weight * cmpm_loss(every_image.pooled, every_text.pooled,
                                                         every_pid)}
        if self.cmpc_weight is not None:
            losses["cmpc"] = config.cmpc_weight * cmpc_loss(image.pooled, text.pooled, pids,
                                                           self.cmpc_weight)
        local = self._local(every_text, every_image).t()  # [images, texts]
        losses["local"] = config.lambda_cont * local_contrastive_loss(
            local, every_pid, float(config.lambda_softmax))
        return losses
