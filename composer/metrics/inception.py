"""FID and KID on Inception-v3 features (Heusel et al. 2017; Bińkowski et al. 2018, "Demystifying
MMD GANs"), computed by torchmetrics (`FrechetInceptionDistance`, `KernelInceptionDistance`), an
optional extra: `pip install 'composer-graphs[fid]'`.

The network is the TensorFlow FID Inception in the TorchScript form that StyleGAN2-ADA/StyleGAN3
and clean-fid use (`inception-2015-12-05.pt`: uint8 images `[N, 3, H, W]` in, 2048 pool features
out with `return_features=True`). It is read from a local file only, never downloaded at run time:
`weights:` (metric option / `--weights`), else `$COMPOSER_INCEPTION`, else
`$COMPOSER_CACHE/inception-2015-12-05.pt`. A missing file or library is a ComposerError saying
which and how to get it. (torch-fidelity, the other kept FID library, was not used: it imports
torchvision, whose PyPI build does not load on a CPU-only torch.)

Use it as `eval.metrics: {inception: {}}` (generated samples against the reference table, e.g.
an `image_folder` input), or on two image folders:
`python -m composer.metrics.inception GENERATED_DIR REAL_DIR [--weights FILE] [--size 299]`.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from composer.data.table import Table
from composer.errors import ComposerError

WEIGHTS_NAME = "inception-2015-12-05.pt"
WEIGHTS_ENV = "COMPOSER_INCEPTION"


def inception_weights(weights: str | os.PathLike | None = None) -> Path:
    """The local Inception file: `weights`, else `$COMPOSER_INCEPTION`, else the cache's copy."""
    from composer.metrics.digits_classifier import cache_dir

    path = Path(weights or os.environ.get(WEIGHTS_ENV) or cache_dir() / WEIGHTS_NAME).expanduser()
    if not path.is_file():
        raise ComposerError(
            f"FID/KID need the Inception weights {WEIGHTS_NAME} (the TorchScript FID network of "
            f"StyleGAN2-ADA and clean-fid) and found no file at {path}; composer never downloads at "
            f"run time: copy the file there, set ${WEIGHTS_ENV}, or pass weights: / --weights"
        )
    return path


def _torchmetrics_image():
    """The torchmetrics image module, or a ComposerError naming the extra to install."""
    try:
        from torchmetrics.image import fid, kid
    except ImportError as err:
        raise ComposerError(
            f"FID/KID need the optional library torchmetrics ({err}): pip install 'composer-graphs[fid]'"
        ) from None
    return fid, kid


class InceptionFeatures(nn.Module):
    """2048 pool features of the TorchScript Inception for uint8 images `[N, 3, H, W]`."""

    def __init__(self, path: Path):
        super().__init__()
        self.detector = torch.jit.load(str(path), map_location="cpu").eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector(images, return_features=True)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """`[N, 1 or 3, H, W]` in [-1, 1] → uint8 `[N, 3, H, W]` in 0..255 (grey repeated)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ComposerError(f"FID/KID: expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    x = ((images.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def fid_kid(generated: torch.Tensor, real: torch.Tensor, *, weights=None, kid_subset_size: int = 100,
            batch: int = 50) -> dict[str, float]:
    """`fid`, `kid` (× 1e3, as usually reported) and `kid_std` of images in [-1, 1]."""
    path = inception_weights(weights)
    fid_module, kid_module = _torchmetrics_image()
    features = InceptionFeatures(path)
    subset = min(kid_subset_size, len(generated), len(real))
    fid = fid_module.FrechetInceptionDistance(feature=features, normalize=False)
    kid = kid_module.KernelInceptionDistance(feature=features, subset_size=subset, normalize=False)
    for images, is_real in ((real, True), (generated, False)):
        for chunk in to_uint8(images).split(batch):
            fid.update(chunk, real=is_real)
            kid.update(chunk, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": 1e3 * float(kid_mean), "kid_std": 1e3 * float(kid_std)}


def inception(samples: torch.Tensor, table: Table, *, weights: str | None = None,
              kid_subset_size: int = 100) -> dict[str, float]:
    """The `eval.metrics` entry: FID/KID of generated images against the reference table's."""
    return fid_kid(samples, table.x, weights=weights, kid_subset_size=kid_subset_size)


def main(argv: list[str] | None = None) -> int:
    """FID/KID of two image folders, printed as JSON."""
    from composer.data.folders import image_folder

    parser = argparse.ArgumentParser(prog="python -m composer.metrics.inception", description=main.__doc__)
    parser.add_argument("generated")
    parser.add_argument("real")
    parser.add_argument("--weights", default=None, help=f"the {WEIGHTS_NAME} file")
    parser.add_argument("--size", type=int, default=299, help="resize both folders to SIZE² first")
    parser.add_argument("--kid-subset-size", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        inception_weights(args.weights)
        _torchmetrics_image()
        generated, real = (image_folder(path=p, size=args.size).x for p in (args.generated, args.real))
        result = fid_kid(generated, real, weights=args.weights, kid_subset_size=args.kid_subset_size)
    except ComposerError as err:
        print(f"error: {err}")
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
