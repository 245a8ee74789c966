"""CLIP's image tower alone, for models that read the text with another encoder (Baseline2).

The weights come through :class:`models.encoders.clip.Backbone`, the one open_clip loading path
(tags online, local files offline, strict keys, position embeddings resized to the image size),
which needs the whole CLIP; the text tower and CLIP's temperature are then removed, so that they
neither cost memory nor appear as parameters that never receive a gradient. Features are the
Backbone's own: CLS and patch tokens (all valid), CLS attention over patches; projected into
CLIP's joint space, or (``project=False``) in the vision width after ``ln_post``, as the MGCC
release's BERT model uses them (768-d for ViT-B), with the then unused projection removed.
"""

from __future__ import annotations

from torch import Tensor, nn

from models.encoders.clip import Backbone
from models.features import ImageFeatures

# open_clip CLIP attributes that belong to the text tower (modules, parameters and a buffer)
# and the temperature (a model on this encoder has its own: CLIP's would get no gradient)
_TEXT_TOWER = ("transformer", "token_embedding", "positional_embedding", "ln_final",
               "text_projection", "attn_mask", "logit_scale", "logit_bias")


class CLIPImageEncoder(nn.Module):
    """CLIP image features: CLS, patches, CLS attention (``feature_dim`` wide).

    Args:
        name, pretrained, image_size, quick_gelu: as for :class:`Backbone`.
        project: through CLIP's visual projection (joint space) or not (vision width).
    """

    def __init__(self, name: str = "ViT-B-16", pretrained: str | None = None,
                 image_size: tuple[int, int] | None = None,
                 quick_gelu: bool | None = None, project: bool = True) -> None:
        super().__init__()
        backbone = Backbone(name, pretrained=pretrained, image_size=image_size,
                            quick_gelu=quick_gelu)
        for attribute in _TEXT_TOWER:
            if hasattr(backbone.clip, attribute):
                delattr(backbone.clip, attribute)
        backbone._tokenizer = None  # type: ignore[assignment]
        self.backbone = backbone
        self.image_size = backbone.image_size
        self.image_mean = backbone.image_mean
        self.image_std = backbone.image_std
        self.quick_gelu = backbone.quick_gelu
        self.project = bool(project)
        if self.project:
            self.feature_dim = backbone.embed_dim
        else:
            self.feature_dim = backbone.vision_width
            backbone.clip.visual.proj = None  # would never receive a gradient

    def forward(self, pixels: Tensor) -> ImageFeatures:
        return self.backbone.encode_images(pixels, project=self.project)
