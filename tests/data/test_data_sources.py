import inspect

import torch

from composer.data import SOURCES, Table

NEEDS_PATH = {"image_folder", "unpaired_folder", "paired_folder", "hf_dataset"}


def test_every_source_takes_keyword_only_arguments():
    for name, source in SOURCES.items():
        params = inspect.signature(source).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), name


def test_every_source_without_a_path_builds_a_table_from_defaults():
    small = {"ring": {"n": 64}, "grid": {"n": 64}, "moons": {"n": 64}, "swiss_roll": {"n": 64}}
    for name in SOURCES.keys() - NEEDS_PATH:
        kwargs = small.get(name, {})
        inspect.signature(SOURCES[name]).bind(**kwargs)
        table = SOURCES[name](**kwargs)
        assert isinstance(table, Table) and table.x.dtype == torch.float32, name
        assert torch.isfinite(table.x).all(), name


def test_image_sources_are_in_minus_one_one():
    for name in ("digits", "digit_styles"):
        table = SOURCES[name]()
        assert table.kind == "image" and table.x.min() >= -1 and table.x.max() <= 1
