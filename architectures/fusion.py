"""Image + text fusion networks for visual question answering (Sort-of-CLEVR).

Every net shares three parts and differs only in how it fuses them:

- the image encoder of Santoro et al. 2017 (arXiv:1706.01427): four 3x3
  stride-2 convolutions with BN and ReLU, turning a 75x75 image into a 5x5
  grid of feature cells. Departure: 32/64/128/128 channels (paper: up to 256),
  so that every net trains on a CPU; ``strides`` (the data set sets them: the
  32x32 Sort-of-CLEVR variant keeps the last layer at stride 1, 4x4 cells);
- a question encoder: word embeddings and a GRU over the token ids (0 pads),
  or (``question="bag"``) one linear map of the word counts; identical
  questions in a batch are encoded once;
- a classifier over the answer vocabulary.

``forward(image, tokens)`` is ``answer(encode_image(image), tokens)``, and
``answer`` takes each image's encoding with all of its questions: a training
loop encodes each image once and answers its 20 questions from that encoding.
Most nets answer one question at a time (``answer_each``, on the encoding
repeated per question); the attention nets, ``fusion_xattn`` and ``fusion_san``,
attend from every question of an image at once, projecting the image's cells
once. The variants:

- ``fusion_concat``: late fusion, the paper's CNN+MLP baseline: average-pooled
  image features concatenated with the question's final GRU state, then an MLP.
- ``fusion_film``: FiLM (Perez et al. 2018, arXiv:1709.07871): the question
  predicts a per-channel scale and shift for the BN output of two residual
  3x3 blocks over the cells (with coordinate maps), then a 1x1 conv, global
  max pooling and an MLP. Departure: two FiLM blocks instead of four.
- ``fusion_xattn``: cross-modal attention, the headline net of the suite (see
  ``CrossModalAttention``): question tokens attend over the image cells.
- ``fusion_san``: stacked attention (see ``StackedAttention``): the question,
  as one vector, attends over the image cells in two hops.
- ``fusion_rn``: the relation network of Santoro et al.: a shared MLP g over
  every pair of cells (with coordinates) and the question, summed, then f.
  Departure: g's first layer is applied to each cell once (W_a o_i + W_b o_j
  + W_q q equals W [o_i, o_j, q]), which makes the pairwise stage cheap; g is
  4 layers of 64 and f 64-64-10 (paper: 4 x 2000 and 2000-1000-500-100), again
  for CPU training.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Change, Family, InputKind, Relations, register
from .layers import ConvBNAct, init_weights

SANTORO_2017 = "Santoro et al. 2017, arXiv:1706.01427"
PEREZ_2018 = "Perez et al. 2018, arXiv:1709.07871"
YANG_2016 = "stacked attention networks (Yang et al. 2016, arXiv:1511.02274)"
VASWANI_2017 = "cross-attention (Vaswani et al. 2017, arXiv:1706.03762)"
QUESTION_LENGTH = 10  # Sort-of-CLEVR's longest question, in words (example inputs only)


class QuestionEncoder(nn.Module):
    """Token ids (B, L), 0 for padding -> GRU states (B, L, H) and the last real token's (B, H)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_once(self.encode, tokens)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.gru(self.embedding(tokens))
        last = (tokens != 0).sum(1).clamp_min(1) - 1  # pads follow the words
        return states, states[torch.arange(len(tokens), device=tokens.device), last]


class BagOfWords(nn.Module):
    """Token ids (B, L) -> a linear map of the word counts, as one state (B, 1, H) and (B, H).
    On questions in the ``bits`` form (three tokens, the set bits of Santoro et al.'s 11-bit
    vector) it is exactly the paper's linear read of that vector."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.linear = nn.Linear(vocab_size - 1, hidden)  # no column for padding

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_once(self.encode, tokens)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts = F.one_hot(tokens, self.vocab_size)[:, :, 1:].sum(1)
        question = self.linear(counts.to(self.linear.weight.dtype))
        return question[:, None], question


QUESTION_ENCODERS = {"gru": QuestionEncoder, "bag": BagOfWords}
Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def encode_once(encode: Encode, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``encode(tokens)``, each distinct question encoded once (a batch by image repeats them)."""
    unique, inverse = torch.unique(tokens, dim=0, return_inverse=True)
    if len(unique) == len(tokens):
        return encode(tokens)
    states, last = encode(unique)
    # index_select, not states[inverse]: its backward sums the repeats in a fixed
    # order on the CPU (indexing's accumulates them in parallel, in any order)
    return states.index_select(0, inverse), last.index_select(0, inverse)


def coordinate_maps(features: torch.Tensor) -> torch.Tensor:
    """Two channels holding each cell's x and y in [-1, 1], shaped like ``features``."""
    batch, _, height, width = features.shape
    ys = torch.linspace(-1, 1, height, device=features.device, dtype=features.dtype)
    xs = torch.linspace(-1, 1, width, device=features.device, dtype=features.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))
    return grid.expand(batch, -1, -1, -1)


class FusionNet(nn.Module):
    """The shared image and question encoders; subclasses define ``answer``."""

    def __init__(
        self,
        *,
        widths: tuple[int, ...] = (32, 64, 128, 128),
        strides: tuple[int, ...] = (2, 2, 2, 2),
        embed_dim: int = 32,
        question_dim: int = 128,
        vocab_size: int = 32,
        num_classes: int = 10,
        in_channels: int = 3,
        question: str = "gru",
    ) -> None:
        super().__init__()
        if question not in QUESTION_ENCODERS:
            raise ValueError(
                f"question must be one of {', '.join(QUESTION_ENCODERS)}, not {question!r}"
            )
        if len(strides) != len(widths):
            raise ValueError(f"strides {strides} must pair with widths {widths}")
        layers, channels = [], in_channels
        for width, stride in zip(widths, strides, strict=True):
            layers.append(ConvBNAct(channels, width, 3, stride=stride))
            channels = width
        self.image_encoder = nn.Sequential(*layers)
        self.question_encoder = QUESTION_ENCODERS[question](vocab_size, embed_dim, question_dim)
        self.feature_channels, self.question_dim, self.num_classes = (
            channels,
            question_dim,
            num_classes,
        )
        self.vocab_size = vocab_size

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, C', h, w) feature cells."""
        return self.image_encoder(image)

    def answer(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Feature cells (B, C', h, w) of B images and Q questions about each, tokens (B, Q, L)
        -> logits (B * Q, answers), image by image."""
        return self.answer_each(
            features.repeat_interleave(tokens.shape[1], dim=0), tokens.flatten(0, 1)
        )

    def answer_each(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Feature cells (N, C', h, w) and one question a row, tokens (N, L) -> (N, answers)."""
        raise NotImplementedError

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.answer(self.encode_image(image), tokens[:, None])


def mlp(*sizes: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with ReLU between them (and dropout before the last)."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(itertools.pairwise(sizes)):
        if index == len(sizes) - 2 and dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConcatFusion(FusionNet):
    """Late fusion: [mean of the cells, question state] -> MLP."""

    def __init__(self, *, hidden: int = 256, **shared: Any) -> None:
        super().__init__(**shared)
        self.head = mlp(self.feature_channels + self.question_dim, hidden, hidden, self.num_classes)
        init_weights(self)

    def answer_each(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        _, question = self.question_encoder(tokens)
        return self.head(torch.cat([features.mean((2, 3)), question], dim=1))


class FiLMBlock(nn.Module):
    """x + ReLU(gamma * BN(conv3x3([x, coords])) + beta), gamma and beta from the question."""

    def __init__(self, channels: int, question_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + 2, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.film = nn.Linear(question_dim, 2 * channels)

    def forward(self, x: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(question)[:, :, None, None].chunk(2, dim=1)
        out = self.norm(self.conv(torch.cat([x, coordinate_maps(x)], dim=1)))
        return x + F.relu((1 + gamma) * out + beta)


class FiLMFusion(FusionNet):
    """FiLM: the question modulates two residual blocks over the image cells."""

    def __init__(self, *, blocks: int = 2, hidden: int = 256, **shared: Any) -> None:
        super().__init__(**shared)
        channels = self.feature_channels
        self.blocks = nn.ModuleList(FiLMBlock(channels, self.question_dim) for _ in range(blocks))
        self.project = ConvBNAct(channels, hidden, 1)
        self.head = mlp(hidden, hidden, self.num_classes)
        init_weights(self)

    def answer_each(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        _, question = self.question_encoder(tokens)
        for block in self.blocks:
            features = block(features, question)
        return self.head(self.project(features).amax((2, 3)))


def positional_encoding_2d(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed sinusoidal encodings of (row, column), (height * width, dim): half the
    channels encode the row, half the column, at geometrically spaced frequencies."""
    quarter = dim // 4
    frequencies = torch.exp(-math.log(100.0) * torch.arange(quarter, device=device) / quarter)

    def encode(positions: torch.Tensor) -> torch.Tensor:
        angles = positions[:, None] * frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows = encode(torch.arange(height, device=device, dtype=torch.float32))
    cols = encode(torch.arange(width, device=device, dtype=torch.float32))
    grid = torch.cat(
        [rows[:, None].expand(-1, width, -1), cols[None].expand(height, -1, -1)], dim=2
    )
    return F.pad(grid.reshape(height * width, -1), (0, dim - 4 * quarter))


class CrossAttentionLayer(nn.Module):
    """Multi-head attention from query tokens to cells, added back and layer-normalised,
    then a feed-forward block, added back and normalised (a post-norm Transformer decoder
    layer without self-attention)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must divide into {heads} heads")
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.attention_norm = nn.LayerNorm(dim)
        self.feedforward = mlp(dim, 2 * dim, dim)
        self.feedforward_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """(B, T, D) queries, each attending on its own (no mask, no mixing), over (B, N, D)
        cells -> (B, T, D)."""
        keys, values = self.key_value(cells).chunk(2, dim=-1)
        attended = F.scaled_dot_product_attention(
            self.split(self.query(x)), self.split(keys), self.split(values)
        )
        x = self.attention_norm(x + self.out(attended.transpose(1, 2).flatten(2)))
        return self.feedforward_norm(x + self.feedforward(x))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)


class CrossModalAttention(FusionNet):
    """Question tokens attend over the image's feature cells.

    1. The cells become a sequence of ``dim``-wide keys/values: a linear
       projection of each cell's features plus a fixed 2D sinusoidal encoding
       of its row and column (so "left", "top" and "closest" are expressible).
    2. Each question token (its GRU state, projected to ``dim``) is a query.
       ``layers`` times, a ``CrossAttentionLayer``: multi-head cross-attention
       from the tokens to the cells, then a feed-forward block.
    3. The tokens' outputs are averaged over the real (non-pad) tokens and
       classified by an MLP.

    The tokens of all the questions about an image query its cells together (a
    token attends to the cells alone, so this is the same as one question at a
    time), and each layer projects an image's cells to keys and values once.
    """

    def __init__(self, *, dim: int = 128, heads: int = 4, layers: int = 2, **shared: Any) -> None:
        super().__init__(**shared)
        self.cells = nn.Linear(self.feature_channels, dim)
        self.queries = nn.Linear(self.question_dim, dim)
        self.layers = nn.ModuleList(CrossAttentionLayer(dim, heads) for _ in range(layers))
        self.head = mlp(dim, dim, self.num_classes)
        init_weights(self)

    def answer(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = features.shape
        cells = self.cells(features.flatten(2).transpose(1, 2))
        cells = cells + positional_encoding_2d(height, width, cells.shape[-1], cells.device)
        questions = tokens.flatten(0, 1)
        states, _ = self.question_encoder(questions)
        x = self.queries(states)  # (B * Q, T, D): T tokens a question, or 1 (bag of words)
        per_question = x.shape[1:]
        x = x.reshape(batch, -1, x.shape[-1])  # every token of an image's questions
        for layer in self.layers:
            x = layer(x, cells)
        x = x.reshape(-1, *per_question)
        per_token = x.shape[1] == questions.shape[1]
        real = (questions != 0 if per_token else torch.ones_like(x[..., 0])).unsqueeze(-1)
        real = real.to(x.dtype)
        pooled = (x * real).sum(1) / real.sum(1).clamp_min(1)
        return self.head(pooled)


def attend(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, spent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention of one query (..., D) over (..., N, D) keys and values
    (leading dimensions broadcast), each cell's weight scaled by (1 - ``spent``), the share
    (..., N) earlier hops gave it: the attended value (..., D) and the weights (..., N)."""
    scores = (keys @ query[..., None]).squeeze(-1) / math.sqrt(keys.shape[-1])
    weights = (scores + torch.log1p(-spent.clamp(max=1 - 1e-4))).softmax(dim=-1)
    return (weights[..., None, :] @ values).squeeze(-2), weights


class StackedAttention(FusionNet):
    """The question attends over the image cells, in ``hops`` (Yang et al. 2016's stacked
    attention networks).

    1. Each cell gives a key and a value: linear projections of its features, each plus
       a fixed 2D sinusoidal encoding of its row and column, so the attended value says
       where the attended object is.
    2. The question vector is the first query; every further hop queries with the
       question plus a projection of what was attended so far. A hop may attend to a
       learned *sink* (a key and value in no image) instead of the cells, so how much it
       gives the cells can say how many matched (counting questions); and it does not
       return to the cells earlier hops took (their weights are scaled by one minus what
       those hops gave them), so it looks past the object it started at.
    3. An MLP classifies what every hop found, side by side, with each hop's weight on
       the cells.

    All the questions about an image attend over its keys and values, projected once.

    Departures: scaled dot-product attention (Yang et al.: additive, with tanh), the
    position encodings, the sink, the hops' exclusion, a head that reads each hop apart
    (Yang et al.'s reads the sum), and a bag-of-words question (``question="bag"``) by
    default: the question then reaches the query through one linear map, as the paper's
    one-hot question vector would: in scratch runs that was what let an attention net
    leave the answer-prior plateau on a CPU budget at all (GRU questions, or
    MultiheadAttention's extra projections, kept it there), though whether this net
    leaves it within 16 epochs depends on the seed (the claims run at a1cae8a: none of 3).
    """

    def __init__(self, *, hops: int = 2, hidden: int = 256, **shared: Any) -> None:
        super().__init__(**{"question": "bag", **shared})
        dim = self.question_dim
        self.keys = nn.Linear(self.feature_channels, dim)
        self.values = nn.Linear(self.feature_channels, dim)
        self.refine = nn.ModuleList(nn.Linear(dim, dim) for _ in range(hops - 1))
        self.head = mlp(hops * (dim + 1), hidden, self.num_classes)
        init_weights(self)
        self.sink = nn.Parameter(torch.zeros(2, dim))  # its key and value

    def answer(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Every question of an image attends over its keys and values at once."""
        batch, count = tokens.shape[:2]
        _, question = self.question_encoder(tokens.flatten(0, 1))
        question = question.reshape(batch, count, -1)  # (B, Q, D): an image's questions
        keys, values = self.keys_and_values(features)
        keys, values = keys[:, None], values[:, None]  # shared by the image's questions
        spent = question.new_zeros(batch, count, keys.shape[2])
        attended, weights = attend(question, keys, values, spent)
        found, on_cells = [attended], [1 - weights[..., :1]]
        for refine in self.refine:
            spent = spent + F.pad(weights[..., 1:], (1, 0))  # the sink is never spent
            hop, weights = attend(question + refine(attended), keys, values, spent)
            attended = attended + hop
            found.append(hop)
            on_cells.append(1 - weights[..., :1])
        return self.head(torch.cat([*found, *on_cells], dim=-1)).flatten(0, 1)

    def keys_and_values(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature cells (B, C', h, w) -> keys and values (B, 1 + h * w, D), the sink's first."""
        batch, _, height, width = features.shape
        cells = features.flatten(2).transpose(1, 2)
        position = positional_encoding_2d(height, width, self.question_dim, cells.device)
        sink_key, sink_value = self.sink[:, None, None].expand(-1, batch, 1, -1)
        keys = torch.cat([sink_key, self.keys(cells) + position], dim=1)
        return keys, torch.cat([sink_value, self.values(cells) + position], dim=1)


class RelationNetwork(FusionNet):
    """sum over cell pairs (i, j) of g(o_i, o_j, q), then f. Cells carry their coordinates."""

    def __init__(
        self, *, hidden: int = 64, g_layers: int = 4, dropout: float = 0.5, **shared: Any
    ) -> None:
        super().__init__(**shared)
        cell_dim = self.feature_channels + 2
        self.g_first_i = nn.Linear(cell_dim, hidden)
        self.g_first_j = nn.Linear(cell_dim, hidden, bias=False)
        self.g_first_q = nn.Linear(self.question_dim, hidden, bias=False)
        self.g_rest = nn.Sequential(
            *(
                layer
                for _ in range(g_layers - 1)
                for layer in (nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
            )
        )
        self.f = mlp(hidden, hidden, self.num_classes, dropout=dropout)
        init_weights(self)

    def answer_each(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        _, question = self.question_encoder(tokens)
        cells = torch.cat([features, coordinate_maps(features)], dim=1).flatten(2).transpose(1, 2)
        first = (
            self.g_first_i(cells)[:, :, None]
            + self.g_first_j(cells)[:, None, :]
            + self.g_first_q(question)[:, None, None]
        )
        relations = self.g_rest(F.relu(first)).sum((1, 2))
        return self.f(relations)


FROM_LATE_FUSION = Relations(twin="fusion_concat", change=Change.ATTENTION)
FUSION_NETS = {
    "fusion_concat": (ConcatFusion, SANTORO_2017 + " (CNN+MLP baseline)", Relations()),
    "fusion_film": (FiLMFusion, PEREZ_2018, Relations()),
    "fusion_xattn": (CrossModalAttention, VASWANI_2017, FROM_LATE_FUSION),
    "fusion_san": (StackedAttention, YANG_2016, FROM_LATE_FUSION),
    "fusion_rn": (RelationNetwork, SANTORO_2017, Relations()),
}
for _name, (_builder, _paper, _relations) in FUSION_NETS.items():
    register(
        _name,
        family=Family.FUSION,
        paper=_paper,
        relations=_relations,
        input_kind=InputKind.IMAGE_TOKENS,
        input_shape=(3, 75, 75),
        token_length=QUESTION_LENGTH,
    )(_builder)
