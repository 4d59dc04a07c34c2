"""The project's own digits classifier: the feature space of the digits metrics and the judge of
label preservation in translation.

A small CNN on grey images at the resolution of its training table (RGB is averaged to grey;
inputs of another size are resized to it as the digits are, bilinear with antialiasing), trained
with torch from a fixed seed on a fixed number of threads, so the same table and config give the
same weights. Images are judged at their own resolution: the digits at 16×16 are the 8×8 ones
resized, and an 8×8 judge that area-pools them back sees a blurred digit (it is 94.0% / 91.1%
confident on real train / test digits at 16×16 against 99.7% / 95.8% at 8×8; a judge trained at
16×16 gives 99.9% / 95.8%), which would underrate every 16×16 generator. Trained weights are
cached in-process and on disk as safetensors under `$COMPOSER_CACHE` (default
`~/.cache/composer`), keyed by a hash of the config and of the training table's tensors. Weights
are only ever read with safetensors, never pickle.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from composer.data.digit_styles import digit_styles
from composer.data.digits import digits
from composer.data.images import resize_images
from composer.data.table import Table
from composer.errors import ComposerError

DOMAIN_EPOCHS = 40


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and training recipe; every field enters the cache key."""

    widths: tuple[int, int] = (16, 32)
    hidden: int = 64
    dropout: float = 0.3
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    threads: int = 1
    version: int = 2  # bump whenever the training code changes what it produces


class DigitClassifier(nn.Module):
    """conv3×3-BN-ReLU → conv3×3-BN-ReLU → max-pool 2 → dropout → linear-ReLU (features)
    → dropout → linear (logits), on `size`×`size` images."""

    def __init__(self, num_classes: int = 10, config: ClassifierConfig = ClassifierConfig(), size: int = 8):
        super().__init__()
        w1, w2 = config.widths
        self.size = size
        self.body = nn.Sequential(
            nn.Conv2d(1, w1, 3, padding=1), nn.BatchNorm2d(w1), nn.ReLU(),
            nn.Conv2d(w1, w2, 3, padding=1), nn.BatchNorm2d(w2), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(config.dropout),
            nn.Linear(w2 * (size // 2) ** 2, config.hidden), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.hidden, num_classes))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """`[N, C, H, W]` in [-1, 1] → `[N, 1, size, size]` on the model's device: grey, resized."""
        check_images(x)
        x = x.detach().to(self.head[1].weight.device, torch.float32)
        grey = x.mean(dim=1, keepdim=True) if x.shape[1] == 3 else x
        return resize_images(grey, self.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `[N, classes]` (differentiable; used for training)."""
        return self.head(self.body(self.prepare(x)))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations `[N, hidden]`."""
        return self.body(self.prepare(x))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities `[N, classes]`."""
        return self(x).softmax(dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable class `[N]` int64."""
        return self(x).argmax(dim=1)


# ---------------------------------------------------------------- training
def _fit(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor, config: ClassifierConfig) -> None:
    """Mini-batch AdamW with a cosine learning-rate decay, cross-entropy, seeded batch order."""
    order_rng = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    batches = -(-len(x) // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * batches)
    model.train()
    for _ in range(config.epochs):
        for batch in torch.randperm(len(x), generator=order_rng).split(config.batch_size):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()


def train_classifier(table: Table, config: ClassifierConfig = ClassifierConfig()) -> DigitClassifier:
    """Train a `DigitClassifier` on any labelled image table (classes = max(y) + 1).

    Deterministic: the global torch RNG is forked and seeded, the thread count is pinned to
    `config.threads` and restored afterwards. Returns the model in eval mode, frozen.
    """
    if table.kind != "image" or table.y is None:
        labels = "no labels" if table.y is None else "labels"
        raise ComposerError(
            f"train_classifier: needs a labelled image table, got kind '{table.kind}' with {labels}"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = DigitClassifier(int(table.y.max()) + 1, config, image_size(table))
            _fit(model, model.prepare(table.x), table.y, config)
    finally:
        torch.set_num_threads(threads)
    return model.eval().requires_grad_(False)


def accuracy(classifier: DigitClassifier, table: Table) -> float:
    """Share of `table`'s images whose predicted class equals their label."""
    return float((classifier.predict(table.x).cpu() == table.y).double().mean())


# ---------------------------------------------------------------- caching
def cache_dir() -> Path:
    """`$COMPOSER_CACHE`, else `~/.cache/composer`."""
    return Path(os.environ.get("COMPOSER_CACHE") or "~/.cache/composer").expanduser()


def cache_key(table: Table, config: ClassifierConfig) -> str:
    """16 hex digits of SHA-256 over the config and the training tensors."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    digest.update(str(tuple(table.x.shape)).encode())
    digest.update(table.x.contiguous().numpy().tobytes())
    digest.update(table.y.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _load(path: Path, config: ClassifierConfig, size: int) -> DigitClassifier | None:
    """The cached model at `path` (its name holds the key), or None when it cannot be used."""
    try:
        weights = load_file(path)
    except (OSError, SafetensorError):
        return None
    model = DigitClassifier(weights["head.1.weight"].shape[0], config, size)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError):
        return None
    return model.eval().requires_grad_(False)


def _save(model: DigitClassifier, path: Path, key: str) -> None:
    """Write atomically (temporary file, then rename); an unwritable cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, partial, metadata={"key": key})
        os.replace(partial, path)
    except OSError:
        pass


def load_or_train(table: Table, config: ClassifierConfig = ClassifierConfig()) -> DigitClassifier:
    """The classifier for `table` and `config`: read from the disk cache, else trained and saved."""
    key = cache_key(table, config)
    path = cache_dir() / f"digits_classifier-{key}.safetensors"
    model = _load(path, config, image_size(table)) if path.is_file() else None
    if model is None:
        model = train_classifier(table, config)
        _save(model, path, key)
    return model


@functools.lru_cache(maxsize=None)
def digits_classifier(size: int = 8) -> DigitClassifier:
    """The evaluator of `size`×`size` digit images: trained on `digits(split="train", size=size)` (seed 0)."""
    return load_or_train(digits(split="train", size=size))


@functools.lru_cache(maxsize=None)
def domain_classifier(
    domain: str = "B", style: str = "thick", size: int = 16, seed: int = 0
) -> DigitClassifier:
    """A classifier of one domain of `digit_styles`, trained on that domain's train split.

    That split is 40% of the digits, so it trains for `DOMAIN_EPOCHS` = 40 epochs: about as many
    steps as the digits classifier's 20 epochs on 80%.
    """
    table = digit_styles(domain=domain, style=style, split="train", size=size, seed=seed)
    return load_or_train(table, ClassifierConfig(epochs=DOMAIN_EPOCHS))


def features(x: torch.Tensor) -> torch.Tensor:
    """Penultimate features of the digits classifier at `x`'s resolution."""
    return classifier_for(x).features(x)


def predict(x: torch.Tensor) -> torch.Tensor:
    """Predicted classes of the digits classifier at `x`'s resolution."""
    return classifier_for(x).predict(x)


def classifier_for(x: torch.Tensor) -> DigitClassifier:
    """`digits_classifier` at the resolution of images `x` `[N, 1 or 3, H, H]` (trained on first use)."""
    check_images(x)
    return digits_classifier(x.shape[-1])


def check_images(x: torch.Tensor) -> None:
    """Refuse anything but a batch of grey or RGB images."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ComposerError(f"digits classifier: expected images [N, 1 or 3, H, W], got {tuple(x.shape)}")


def image_size(table: Table) -> int:
    """The side of `table`'s square images (the resolution a classifier trained on it judges)."""
    if table.x.dim() != 4 or table.x.shape[-1] != table.x.shape[-2]:
        raise ComposerError(f"digits classifier: needs square images [N, C, H, H], got {tuple(table.x.shape)}")
    return int(table.x.shape[-1])
