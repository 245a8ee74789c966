"""A BERT text encoder (Hugging Face ``transformers``) with its own WordPiece tokenizer.

What it gives a retrieval model (in BERT's hidden size; the method projects to its joint space):

* ``pooled``: the last layer's ``[CLS]`` state (BERT's pooler is a tanh layer trained for next
  sentence prediction; the text-based person search models on BERT pool the states themselves, so
  the pooler is not built and its weights are ignored when a checkpoint has them);
* ``tokens``: the word-piece states between ``[CLS]`` and ``[SEP]``; ``mask`` is False on
  ``[CLS]``, ``[SEP]`` and padding, which are never tokens;
* ``attention``: the token score MGCC's token selection ranks by, the same one as for CLIP: the
  last layer's attention row of the global token (``[CLS]``) averaged over heads, renormalised over
  the valid word pieces. It needs the "eager" attention implementation (the fused kernels do not
  return attention maps), which this module always selects.

Where the weights, architecture and vocabulary come from (``source``):

* ``"tiny"``: a random BERT with a built-in vocabulary (special tokens, letters, ``##``-letters
  and a few hundred person-description words, so every lower-case word has a WordPiece split),
  made in memory: no file is needed. The architecture is 2 layers of width 64 (tests, the CPU
  demo) unless ``architecture`` says otherwise (``perf/models.py`` times a random BERT-base so).
* a local folder as ``save_pretrained`` writes it: ``config.json`` (``model_type`` "bert"),
  ``vocab.txt`` (optionally ``tokenizer_config.json`` for ``do_lower_case``) and the weights
  (``model.safetensors`` or ``pytorch_model.bin``; a ``BertForMaskedLM``/``BertForPreTraining``
  checkpoint's ``bert.`` prefix, its heads and the old ``gamma``/``beta`` names are handled).
  Loading is strict: a missing, unexpected or wrongly shaped entry is refused with one line
  naming the file and the first such key.
* a Hugging Face Hub name such as ``"bert-base-uncased"``: downloaded into the Hub cache where a
  network exists (only config, vocabulary and safetensors weights), then read like a folder;
  offline (``HF_HUB_OFFLINE=1`` or no network) a one-line :class:`ModelError` says which files to
  fetch into which folder.
* ``None`` with an ``architecture`` dict: random weights of that architecture and no vocabulary
  until a checkpoint is loaded (this is how a finished run is rebuilt, see below).

How the vocabulary travels with a run: the vocabulary text is a ``uint8`` buffer of this module
(``vocab_bytes``), so every checkpoint (``best.pt``) carries the exact WordPiece vocabulary next
to the embedding rows it indexes, and loading a state dict rebuilds the tokenizer from it. The
architecture (``BertConfig`` fields) and ``do_lower_case`` are recorded in the model config by the
method's ``finalize_config``. So a run folder alone (``config.json`` + ``best.pt``) rebuilds the
same encoder and tokenizer offline, with no BERT folder and no Hub cache (``bench eval`` and
``bench query`` on another machine). The bert-base-uncased vocabulary adds 0.23 MB to a 0.5 GB
checkpoint; keeping it out of ``config.json`` keeps that file readable.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.errors import ModelError
from models.features import TextFeatures

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The BertConfig fields that fix the architecture (and so the state dict's keys and shapes).
ARCHITECTURE_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "pad_token_id",
)

TINY_WORDS = """
a an the this that with and or in on of to at by for from his her he she is are has wears
wearing wore carrying carries carry holding holds hold walking walks walk dressed seen over
along pair feet hand hands head back side front left right long short medium dark light bright
man woman men women boy girl lady guy gentleman person child kid adult young old male female
people pedestrian shirt t-shirt tshirt top jacket coat sweater hoodie vest blouse dress skirt
pants trousers jeans shorts leggings shoes sneakers boots sandals heels socks hat cap helmet
hood glasses sunglasses scarf belt watch bag handbag backpack rucksack purse suitcase umbrella
phone bottle bike bicycle hair ponytail bald shaved beard sleeves sleeve sleeveless collar logo
stripes striped plaid pattern print white black gray grey red blue green yellow orange purple
pink brown beige navy khaki tan gold silver colored coloured colorful sleeved shoulder
leather partly hides legs arm arms body upper lower clothes clothing outfit
""".split()


def tiny_vocabulary() -> list[str]:
    """The built-in vocabulary of the tiny BERT: specials, punctuation, digits, letters and
    ``##``-letters (so any lower-case word splits into known pieces, never ``[UNK]``), and the
    common words of person descriptions as whole pieces."""
    pieces = list(SPECIAL_TOKENS)
    pieces += list(string.punctuation) + list(string.digits) + list(string.ascii_lowercase)
    pieces += [f"##{c}" for c in string.ascii_lowercase + string.digits]
    seen = set(pieces)
    for word in TINY_WORDS:
        if word not in seen:
            seen.add(word)
            pieces.append(word)
    return pieces


# bert-base-uncased's architecture (its config.json): 12 layers, width 768, 12 heads
BERT_BASE_ARCHITECTURE: dict[str, Any] = {
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "max_position_embeddings": 512,
    "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
}


def tiny_architecture() -> dict[str, Any]:
    """The tiny BERT's architecture: 2 layers, width 64, 2 heads (CPU tests in milliseconds)."""
    return {
        "vocab_size": len(tiny_vocabulary()), "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 128, "hidden_act": "gelu",
        "max_position_embeddings": 128, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
    }


def _vocab_to_bytes(pieces: list[str]) -> Tensor:
    if not pieces:
        return torch.zeros(0, dtype=torch.uint8)
    data = bytearray(("\n".join(pieces) + "\n").encode("utf-8"))
    return torch.frombuffer(data, dtype=torch.uint8).clone()


def _bytes_to_vocab(buffer: Tensor) -> list[str]:
    text = bytes(buffer.detach().cpu().numpy().tobytes()).decode("utf-8")
    return text.split("\n")[:-1] if text else []


def read_vocab_file(path: Path) -> list[str]:
    """The pieces of a BERT ``vocab.txt`` (one per line; the line number is the id)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: cannot read the WordPiece vocabulary ({error})") from None
    pieces = [line.rstrip("\r") for line in text.split("\n")]
    if pieces and pieces[-1] == "":
        pieces.pop()
    missing = [t for t in SPECIAL_TOKENS if t not in pieces]
    if missing:
        raise ModelError(f"{path}: not a BERT vocabulary (no {missing[0]} entry)")
    return pieces


def make_tokenizer(pieces: list[str], lowercase: bool) -> Any:
    """A ``BertTokenizerFast`` over ``pieces`` (built in memory: no file is read or written)."""
    from transformers import BertTokenizerFast

    vocab = {piece: index for index, piece in enumerate(pieces)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=lowercase)


# --------------------------------------------------------------------------------- sources
def resolve_source(source: str) -> Path:
    """A local folder holding the BERT files of ``source`` (a folder, or a Hub name fetched into
    the Hugging Face cache)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder
    if folder.exists() or source.startswith((".", "/", "~")) or "\\" in source:
        raise ModelError(f"BERT folder not found: {source} (a folder with config.json, vocab.txt "
                         "and model.safetensors, or a Hugging Face name such as "
                         "bert-base-uncased)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(
            source, allow_patterns=["config.json", "vocab.txt", "tokenizer_config.json",
                                    "model.safetensors"]))
    except Exception as error:
        raise ModelError(
            f"cannot fetch BERT '{source}' from the Hugging Face Hub ({type(error).__name__}; "
            f"offline?): where a network exists download config.json, vocab.txt and "
            f"model.safetensors from https://huggingface.co/{source} into a folder and pass "
            "that folder instead") from None


def read_architecture(folder: Path) -> dict[str, Any]:
    """The architecture fields of ``folder/config.json``; refuses a model that is not BERT."""
    path = folder / "config.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: not found (a BERT folder needs config.json)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: not a readable JSON config ({error})") from None
    if not isinstance(values, dict) or values.get("model_type") != "bert":
        kind = values.get("model_type") if isinstance(values, dict) else None
        raise ModelError(f"{path}: field 'model_type' is {kind!r}, not 'bert': "
                         "not a BERT model folder")
    from transformers import BertConfig

    defaults = BertConfig().to_dict()
    return {name: values.get(name, defaults[name]) for name in ARCHITECTURE_FIELDS}


def read_lowercase(folder: Path, default: bool = True) -> bool:
    """``do_lower_case`` from ``tokenizer_config.json`` where present (uncased models: True)."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return default
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: not a readable JSON config ({error})") from None
    return bool(values.get("do_lower_case", default))


def _read_state_dict(folder: Path) -> tuple[dict[str, Tensor], Path]:
    safetensors_file, bin_file = folder / "model.safetensors", folder / "pytorch_model.bin"
    try:
        if safetensors_file.is_file():
            from safetensors.torch import load_file

            return load_file(str(safetensors_file)), safetensors_file
        if bin_file.is_file():
            state = torch.load(bin_file, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ModelError(f"{bin_file}: not a state dict")
            return state, bin_file
    except ModelError:
        raise
    except Exception as error:
        path = safetensors_file if safetensors_file.is_file() else bin_file
        raise ModelError(f"{path}: not a readable checkpoint ({type(error).__name__})") from None
    raise ModelError(f"{folder}: no model.safetensors or pytorch_model.bin weights file")


def _bert_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A BERT checkpoint's encoder entries under ``BertModel``'s names: the ``bert.`` prefix of
    task models removed, heads and pooler dropped, ``gamma``/``beta`` renamed."""
    prefixed = any(k.startswith("bert.") for k in state)
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if prefixed:
            if not key.startswith("bert."):
                continue  # cls.predictions.*, qa_outputs.*, ...: task heads
            key = key[len("bert."):]
        if key.startswith("pooler."):
            continue
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = value
    return out


# --------------------------------------------------------------------------------- encoder
class BertTextEncoder(nn.Module):
    """BERT plus its WordPiece tokenizer, giving :class:`TextFeatures` in the hidden size.

    Args:
        source: ``"tiny"``, a local folder, a Hub name, or ``None`` (random ``architecture``).
        architecture: the architecture fields (see :data:`ARCHITECTURE_FIELDS`) for
            ``source=None`` or ``"tiny"``; ignored otherwise (the source's ``config.json``).
        lowercase: the tokenizer's ``do_lower_case`` for ``source=None`` (a folder's
            ``tokenizer_config.json`` decides otherwise).
        max_length: the most word pieces per caption, ``[CLS]`` and ``[SEP]`` included.
    """

    vocab_bytes: Tensor

    def __init__(self, source: str | None = "tiny", *, architecture: dict[str, Any] | None = None,
                 lowercase: bool = True, max_length: int = 64) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        state: dict[str, Tensor] | None = None
        weights_file: Path | None = None
        if source == "tiny":
            architecture, pieces = architecture or tiny_architecture(), tiny_vocabulary()
        elif source is not None:
            folder = resolve_source(source)
            architecture = read_architecture(folder)
            pieces = read_vocab_file(folder / "vocab.txt")
            lowercase = read_lowercase(folder, lowercase)
            state, weights_file = _read_state_dict(folder)
        elif architecture is None:
            raise ModelError("a BERT without a source needs its architecture")
        else:
            pieces = []  # arrives with the checkpoint (load_state_dict)
        unknown = sorted(set(architecture) - set(ARCHITECTURE_FIELDS))
        if unknown:
            raise ModelError(f"unknown BERT architecture field(s) {', '.join(unknown)}")
        if int(max_length) < 3:
            raise ModelError(f"max_length must be at least 3 ([CLS], a word, [SEP]), "
                             f"got {max_length}")
        self.architecture = dict(architecture)
        self.lowercase = bool(lowercase)
        self.max_length = min(int(max_length), int(architecture["max_position_embeddings"]))
        config = BertConfig(**architecture)
        config._attn_implementation = "eager"  # attention maps for the token score
        self.bert = BertModel(config, add_pooling_layer=False)
        self.feature_dim = int(config.hidden_size)
        if state is not None and weights_file is not None:
            self._load_weights(state, weights_file)
        self.register_buffer("vocab_bytes", _vocab_to_bytes(pieces), persistent=True)
        self._set_vocabulary(pieces)

    # ---------------------------------------------------------------------------- weights
    def _load_weights(self, state: dict[str, Tensor], path: Path) -> None:
        state = _bert_keys(state)
        expected = self.bert.state_dict()
        missing = [k for k in expected if k not in state]
        wrong = [k for k in expected if k in state and expected[k].shape != state[k].shape]
        # position_ids is a non-persistent buffer in recent transformers, saved by older ones
        unexpected = [k for k in state if k not in expected and not k.endswith("position_ids")]
        if missing or unexpected or wrong:
            # the first misfit in the model's own order (embeddings first), then the extras
            misfits = set(missing) | set(wrong)
            first = next((k for k in expected if k in misfits), None) or unexpected[0]
            raise ModelError(
                f"{path}: weights do not fit the BERT of config.json ({len(missing)} missing, "
                f"{len(unexpected)} unexpected, {len(wrong)} wrongly shaped entries; first: "
                f"'{first}')")
        self.bert.load_state_dict({k: state[k].float() for k in expected}, strict=True)

    def _set_vocabulary(self, pieces: list[str]) -> None:
        if len(pieces) > int(self.architecture["vocab_size"]):
            raise ModelError(f"the WordPiece vocabulary has {len(pieces)} entries, more than the "
                             f"{self.architecture['vocab_size']} embedding rows")
        self._tokenizer = make_tokenizer(pieces, self.lowercase) if pieces else None

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        """Take the checkpoint's vocabulary whatever its length, then rebuild the tokenizer."""
        key = prefix + "vocab_bytes"
        if key in state_dict and state_dict[key].shape != self.vocab_bytes.shape:
            self.vocab_bytes = torch.empty_like(state_dict[key], device=self.vocab_bytes.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if key in state_dict:
            self._set_vocabulary(_bytes_to_vocab(self.vocab_bytes))

    @property
    def vocabulary(self) -> list[str]:
        return _bytes_to_vocab(self.vocab_bytes)

    # ---------------------------------------------------------------------------- encoding
    def tokenize(self, texts: list[str]) -> Tensor:
        """Word-piece ids ``[B, L]``: ``[CLS]``, pieces, ``[SEP]``, ``[PAD]`` (id 0) to the batch's
        longest caption; at most ``max_length`` (longer captions are cut before ``[SEP]``)."""
        if self._tokenizer is None:
            raise ModelError("this BERT has no WordPiece vocabulary yet: load the run's "
                             "checkpoint (it carries the vocabulary) or build it from a source")
        encoded = self._tokenizer(list(texts), padding=True, truncation=True,
                                  max_length=self.max_length, return_tensors="pt")
        return encoded["input_ids"]

    @property
    def special_ids(self) -> tuple[int, int, int]:
        """Ids of ``[PAD]``, ``[CLS]`` and ``[SEP]`` in the vocabulary."""
        tok = self._tokenizer
        if tok is None:
            raise ModelError("this BERT has no WordPiece vocabulary yet")
        return int(tok.pad_token_id), int(tok.cls_token_id), int(tok.sep_token_id)

    def forward(self, tokens: Tensor) -> TextFeatures:
        """``[CLS]`` state, the word-piece states (``[CLS]`` dropped), their mask and the
        ``[CLS]`` attention score; all in the hidden size."""
        pad_id, cls_id, sep_id = self.special_ids
        attention_mask = tokens != pad_id
        out = self.bert(input_ids=tokens, attention_mask=attention_mask.long(),
                        output_attentions=True)
        states = out.last_hidden_state
        with torch.no_grad():
            cls_row = out.attentions[-1][:, :, 0, :].float().mean(dim=1)  # [B, L]
        words = states[:, 1:]
        mask = attention_mask[:, 1:] & (tokens[:, 1:] != sep_id) & (tokens[:, 1:] != cls_id)
        score = cls_row[:, 1:] * mask
        score = score / score.sum(dim=1, keepdim=True).clamp_min(torch.finfo(score.dtype).tiny)
        return TextFeatures(pooled=states[:, 0], tokens=words, mask=mask, attention=score)
