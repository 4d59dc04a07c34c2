"""diffusers models as blocks: the conventions of the adapters (time scale, labels, context,
outputs, autoencoder methods), the meta device, and a short training run."""
import pytest
import torch

from composer import api
from composer.blocks import BLOCKS

pytest.importorskip("diffusers")

from test_blocks_bridges import unet_args, unet_graph  # noqa: E402

VAE = {"in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16], "latent_channels": 2,
       "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
       "norm_num_groups": 4, "sample_size": 8, "scaling_factor": 0.5}
DIT = {"num_attention_heads": 2, "attention_head_dim": 8, "in_channels": 1, "out_channels": 1, "num_layers": 1,
       "sample_size": 8, "patch_size": 2, "num_embeds_ada_norm": 10, "norm_num_groups": 4}
COND_UNET = {"sample_size": 8, "in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16],
             "layers_per_block": 1, "norm_num_groups": 4, "cross_attention_dim": 12, "attention_head_dim": 4,
             "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}


class Spy(torch.nn.Module):
    """Stands in for a diffusers model: records what the adapter passes."""

    def forward(self, sample, timestep, return_dict=True, **options):
        self.seen = (timestep, options, return_dict)
        return (sample + 1,)


def test_composer_time_becomes_the_model_s_timestep():
    block = BLOCKS["diffusers.UNet2DModel"](**unet_args(), timestep_scale=1000, timestep_shift=-1)
    block.model = Spy()
    out = block(torch.zeros(2, 1, 8, 8), torch.tensor([0.001, 1.0]))
    timestep, options, return_dict = block.model.seen
    assert torch.allclose(timestep, torch.tensor([0.0, 999.0])) and options == {} and return_dict is False
    assert torch.equal(out, torch.ones(2, 1, 8, 8))            # the tuple unwrapped to its tensor


def test_the_default_scale_matches_a_direct_call():
    block = BLOCKS["diffusers.UNet2DModel"](**unet_args())
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([0.25, 0.5])
    assert torch.equal(block(x, t), block.model(x, t * 1000).sample)


def test_labels_go_to_class_labels_and_minus_one_to_the_null_label():
    block = BLOCKS["diffusers.DiTTransformer2DModel"](**DIT, null_label=10)
    block.model = Spy()
    block(torch.zeros(2, 1, 8, 8), torch.rand(2), torch.tensor([3, -1]))
    assert torch.equal(block.model.seen[1]["class_labels"], torch.tensor([3, 10]))
    dit = BLOCKS["diffusers.DiTTransformer2DModel"](**DIT)
    assert dit(torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([3, 4])).shape == (2, 1, 8, 8)


def test_a_float_condition_is_the_cross_attention_context():
    block = BLOCKS["diffusers.UNet2DConditionModel"](**COND_UNET)
    x, t, context = torch.randn(2, 1, 8, 8), torch.rand(2), torch.randn(2, 5, 12)
    assert torch.equal(block(x, t, context), block.model(x, t * 1000, encoder_hidden_states=context).sample)


def test_autoencoder_forward_encode_decode():
    vae = BLOCKS["diffusers.AutoencoderKL"](**VAE)
    x = torch.randn(2, 1, 8, 8)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (2, 2, 4, 4) and vae.scaling_factor == 0.5
    assert torch.equal(vae.decode(mean), vae.model.decode(mean).sample)
    assert torch.equal(vae(x), vae.decode(mean))               # forward: the posterior mean decoded
    assert torch.equal(mean, vae.model.encode(x).latent_dist.mean)


@pytest.mark.parametrize("name, args, inputs", [
    ("UNet2DModel", {**unet_args(), "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
                     "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "attention_head_dim": 4},
     lambda: (torch.zeros(2, 1, 8, 8), torch.zeros(2))),
    ("UNet2DConditionModel", COND_UNET, lambda: (torch.zeros(2, 1, 8, 8), torch.zeros(2), torch.zeros(2, 5, 12))),
    ("DiTTransformer2DModel", DIT, lambda: (torch.zeros(2, 1, 8, 8), torch.zeros(2), torch.zeros(2, dtype=torch.long))),
    ("AutoencoderKL", VAE, lambda: (torch.zeros(2, 1, 8, 8),)),
])
def test_models_build_and_run_on_the_meta_device(name, args, inputs):
    with torch.device("meta"):
        block = BLOCKS[f"diffusers.{name}"](**args)
        out = block(*inputs())
    assert block.meta_shapes and out.is_meta and out.shape == block.to_empty(device="cpu")(*inputs()).shape


def test_validate_checks_a_graph_with_a_diffusers_denoiser():
    plan = api.validate(api.from_dict(unet_graph()))
    assert plan.graph.param_counts["eps_net"] > 0


def test_a_diffusers_unet_trains_as_the_denoising_model(tmp_path):
    results = api.train(api.from_dict(unet_graph()), tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "weights.safetensors").is_file()
    assert results is not None


def test_the_whole_shape_pass_runs_on_the_meta_device():
    from composer.graph.build import build
    from composer.graph.shapes import infer_shapes

    graph = build(api.from_dict(unet_graph()), check_shapes=False)
    assert infer_shapes(graph, torch.device("meta")) == infer_shapes(graph, torch.device("cpu"))
    assert BLOCKS["diffusers.UNet2DModel"].meta_shapes      # the entry says so before anything is built


GRAPH = """\
name: diffusers_unet
inputs:
  x0: {source: digits, size: 8, split: train}
modules:
  eps_net: {block: diffusers.UNet2DModel, sample_size: 8, in_channels: 1, out_channels: 1,
            block_out_channels: [16, 32], layers_per_block: 1, norm_num_groups: 8,
            down_block_types: [DownBlock2D, AttnDownBlock2D], up_block_types: [AttnUpBlock2D, UpBlock2D],
            attention_head_dim: 8}
objectives:
  dsm: {recipe: denoising, data: x0, model: eps_net, schedule: vp, target: eps}
optimizers:
  eps_net: {params: [eps_net], type: adam, lr: 1.0e-3}
train: {steps: 3, batch: 8}
sample: {objective: dsm, sampler: ddim, steps: 5, n: 4}
"""


def test_composer_validate_on_a_graph_file(tmp_path, capsys):
    from composer.tools.cli import main

    (tmp_path / "unet.yaml").write_text(GRAPH)
    assert main(["validate", str(tmp_path / "unet.yaml")]) == 0
    assert "ok (10 nodes, 1 modules, 176,849 parameters" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text(GRAPH.replace("UNet2DModel", "UNet2DModl"))
    assert main(["validate", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml:5:13: modules.eps_net.block: unknown block 'diffusers.UNet2DModl' (did you mean " \
           "'diffusers.UNet2DModel'?)" in capsys.readouterr().err
