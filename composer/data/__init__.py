"""Built-in data sources: each is a function of keyword-only arguments returning a `Table`, with
the fields it yields and their per-sample shapes known from its arguments alone (so graphs over
user folders validate and plan on machines that do not have the folder)."""
from composer.data.digit_styles import digit_styles
from composer.data.digits import digits
from composer.data.folders import image_folder, unpaired_folder
from composer.data.hf_dataset import PATH_ARGS, check_hf_args, held_out_args, hf_dataset, hf_fields
from composer.data.images import check_folder
from composer.data.mixtures import grid, ring
from composer.data.noise import NOISE
from composer.data.paired import paired_digits, paired_folder
from composer.data.table import Table
from composer.data.toy2d import moons, swiss_roll
from composer.data.source import Source, image_fields, point_fields
from composer.registry import Registry

SOURCES = Registry("source", {
    "digits": Source(digits, lambda a: image_fields(1, a["size"], labels=True)),
    "digit_styles": Source(digit_styles, lambda a: image_fields(1, a["size"], labels=True)),
    "image_folder": Source(image_folder, lambda a: image_fields(a["channels"], a["size"]), check_folder),
    "unpaired_folder": Source(unpaired_folder, lambda a: image_fields(a["channels"], a["size"]), check_folder),
    "paired_digits": Source(paired_digits, lambda a: image_fields(1, a["size"], labels=True, extra=("target",))),
    "paired_folder": Source(paired_folder, lambda a: image_fields(a["channels"], a["size"], extra=("target",)),
                            check_folder),
    "hf_dataset": Source(hf_dataset, hf_fields, check_hf_args, paths=PATH_ARGS, held_out=held_out_args),
    "ring": Source(ring, lambda a: point_fields(labels=True)),
    "grid": Source(grid, lambda a: point_fields(labels=True)),
    "moons": Source(moons, lambda a: point_fields(labels=True)),
    "swiss_roll": Source(swiss_roll, lambda a: point_fields()),
})

REGISTRIES = {"sources": SOURCES, "noise": NOISE}   # what this package declares (composer.registry.get)

__all__ = ["SOURCES", "Table"]
