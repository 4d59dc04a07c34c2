"""Built-in data sources: each is a function of keyword-only arguments returning a `Table`."""
from composer.data.digit_styles import digit_styles
from composer.data.digits import digits
from composer.data.folders import image_folder, unpaired_folder
from composer.data.mixtures import grid, ring
from composer.data.table import Table
from composer.data.toy2d import moons, swiss_roll

SOURCES = {
    "digits": digits,
    "ring": ring,
    "grid": grid,
    "moons": moons,
    "swiss_roll": swiss_roll,
    "image_folder": image_folder,
    "digit_styles": digit_styles,
    "unpaired_folder": unpaired_folder,
}

__all__ = ["SOURCES", "Table"]
