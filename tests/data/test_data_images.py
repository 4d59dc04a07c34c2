import numpy as np
import torch
from PIL import Image

from composer.data.images import image_grid, resize_images, save_image_grid, save_scatter


def test_grid_of_8x8_digits_is_upscaled_to_32_pixel_tiles(tmp_path):
    x = torch.ones(10, 1, 8, 8)
    path = save_image_grid(x, tmp_path / "sub" / "grid.png")
    with Image.open(path) as image:
        assert image.mode == "L" and image.size == (4 * 34 + 2, 3 * 34 + 2)
        pixels = np.asarray(image)
    assert pixels[2, 2] == 255 and pixels[0, 0] == 0  # tile pixel white, padding black
    assert pixels[2 + 32 - 1, 2 + 32 - 1] == 255 and pixels[2 + 32, 2] == 0


def test_grid_of_rgb_images_with_given_row_length(tmp_path):
    x = torch.linspace(-1, 1, 6 * 3 * 40 * 40).reshape(6, 3, 40, 40)
    path = save_image_grid(x, tmp_path / "grid.png", nrow=3)
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (3 * 42 + 2, 2 * 42 + 2)


def test_image_grid_places_images_row_major():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(x, nrow=2, padding=1)
    assert grid.shape == (2 * (32 + 1) + 1, 2 * (32 + 1) + 1, 1)
    assert grid[1, 1, 0] == -1.0 and grid[1, 34, 0] == 0.0 and grid[34, 1, 0] == 1.0


def test_scatter_draws_points_and_reference_in_two_colours(tmp_path):
    reference = torch.randn(500, 2)
    points = torch.tensor([[0.0, 0.0], [float("nan"), 1.0], [1e9, 1e9]])
    path = save_scatter(points, tmp_path / "scatter.png", reference=reference, size=256)
    with Image.open(path) as image:
        assert image.size == (256, 256) and image.mode == "RGB"
        pixels = np.asarray(image).reshape(-1, 3)
    colours = {tuple(p) for p in pixels}
    assert (200, 30, 30) in colours and (120, 160, 230) in colours and (255, 255, 255) in colours


def test_scatter_without_reference(tmp_path):
    path = save_scatter(torch.randn(100, 2), tmp_path / "s.png")
    with Image.open(path) as image:
        assert image.size == (512, 512)


def test_resize_images_keeps_range_and_identity_at_same_size():
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    assert resize_images(x, 8) is x
    y = resize_images(x, 20)
    assert y.shape == (2, 1, 20, 20) and y.min() >= -1 and y.max() <= 1
