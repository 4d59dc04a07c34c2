"""The denoiser's EMA copy is saved with the checkpoint, restored from it, and used for sampling."""
import torch
from safetensors.torch import load_file

from composer import api
from composer.api import open_run
from composer.run.generate import generate
from composer.recipes.samplers import sample
from composer.recipes.schedules import VPSDE
from specs import tiny_denoiser


def test_ema_is_saved_restored_and_sampled_from(tmp_path):
    spec = api.from_dict(tiny_denoiser(steps=3, ema={"eps_net": 0.5}, log_every=0))
    api.train(spec, out=tmp_path, quiet=True)
    run = open_run(str(tmp_path))
    ema, raw = run.ema["eps_net"], run.raw["eps_net"]
    assert run.step_count == 3
    assert any(not torch.equal(e, r) for e, r in zip(ema.parameters(), raw.parameters()))
    # the restored EMA equals the one training ended with (written to weights.safetensors)
    final = load_file(tmp_path / "weights.safetensors")
    for key, value in ema.state_dict().items():
        assert torch.equal(value, final[f"ema.eps_net.{key}"])

    def draw(net):
        return sample("heun", lambda x, t: net(x, t), (16, 2), VPSDE(), 3, spacing="quadratic",
                      generator=torch.Generator().manual_seed(0), dtype=torch.float32)

    got = generate(run, 16, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, draw(ema))
    assert not torch.equal(got, draw(raw))
    assert raw.training and ema.training          # modes are restored after sampling
