"""A few-step CPU smoke run of each shipped diffusion graph, generation with every sampler, the
sampler options from YAML, CLI overrides and the Python API, and the plan of the denoising graph."""
import numpy as np
import pytest
import torch

from composer import api
from composer.api import open_run
from composer.tools.cli import main
from composer.errors import ComposerError, SpecError
from composer.run.generate import generate
from composer.graph.view import format_table
from composer.recipes.denoising import LogSNRTime
from composer.recipes.samplers import DEFAULT_SPACING, SAMPLERS
from composer.recipes.schedules import VPSDE
from conftest import GRAPHS

TINY = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=0",
        "train.checkpoint_every=0", "sample.n=4", "sample.steps=2", "eval.n=64"]
SHAPES = {"diffusion_2d": (2,), "diffusion": (1, 8, 8), "latent_diffusion": (1, 16, 16)}
METRICS = {"diffusion_2d": [], "diffusion": [], "latent_diffusion": ["eval.metrics={}"]}  # declared metrics run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (run folder, train() results, Runner reopened from the folder), 2 steps each."""
    out = {}
    for name in SHAPES:
        folder = tmp_path_factory.mktemp(name)
        results = api.train(GRAPHS / f"{name}.yaml", out=folder, overrides=TINY + METRICS[name], quiet=True)
        out[name] = folder, results, open_run(str(folder))
    return out


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_smoke_run_writes_a_complete_run_folder(runs, name):
    folder, results, run = runs[name]
    assert results["step"] == run.step_count == 2
    for file in ("spec.yaml", "metrics.jsonl", "weights.safetensors", "samples/final.png", "eval.json"):
        assert (folder / file).exists(), file
    if name == "diffusion_2d":
        assert results["mixture.modes_total"] == 25
    if name == "diffusion":
        assert results["digits.classes_total"] == 10 and "digits.frechet_distance" in results


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_gives_finite_samples_of_the_data_shape(runs, name, sampler):
    samples = generate(runs[name][2], 5, sampler=sampler, steps=3)
    assert samples.shape == (5,) + SHAPES[name]
    assert torch.isfinite(samples).all()


def test_cli_sample_takes_sampler_overrides(runs, tmp_path, capsys):
    folder, file = runs["diffusion_2d"][0], tmp_path / "s.npy"
    command = ["sample", str(folder), "-n", "30", "-o", str(file)]
    assert main(command + ["sample.sampler=dpmpp_2m", "sample.steps=4"]) == 0
    assert np.load(file).shape == (30, 2)
    assert main(["sample", str(folder), "-n", "3", "-o", str(file), "sample.sampler=dpm"]) == 2
    assert "sample.sampler: unknown sampler 'dpm'" in capsys.readouterr().err


def test_sampler_options_come_from_arguments_then_spec_then_sampler_default(runs):
    run = runs["diffusion_2d"][2]

    def draw(**options):
        return generate(run, 6, generator=torch.Generator().manual_seed(0), **options)

    assert run.spec.sample.options == {"sampler": "heun", "steps": 2}    # the file's, then TINY's override
    torch.testing.assert_close(draw(), draw(sampler="heun", steps=2, spacing=DEFAULT_SPACING["heun"]))
    assert not torch.equal(draw(), draw(spacing="uniform"))
    assert not torch.equal(draw(), draw(steps=3))
    with pytest.raises(ComposerError, match=r"sample.sampler: unknown sampler 'hune' \(did you mean 'heun'\?\)"):
        draw(sampler="hune")
    with pytest.raises(ComposerError, match=r"the generator has no argument 'stepz' \(did you mean 'steps'\?\)"):
        draw(stepz=3)


@pytest.mark.parametrize("key, value, message", [
    ("sampler", "hune", r"sample.sampler: unknown sampler 'hune' \(did you mean 'heun'\?\)"),
    ("spacing", "log", r"sample.spacing: unknown spacing 'log' \(did you mean 'logsnr'\?\)"),
    ("objective", "dms", r"sample.objective: unknown objective 'dms' \(did you mean 'dsm'\?\)"),
    ("decode", "dek", r"sample.decode: unknown module 'dek'"),
    ("steps", "0", r"sample.steps: expected a positive number of sampler steps, got 0"),
])
def test_bad_sample_options_fail_at_build(key, value, message):
    with pytest.raises(SpecError, match=message):
        api.plan(GRAPHS / "diffusion_2d.yaml", [f"sample.{key}={value}"])


def test_denoising_plan_shows_time_noise_and_x_t_as_nodes():
    plan = api.plan(GRAPHS / "diffusion_2d.yaml")
    nodes = plan.graph.nodes
    assert (nodes["dsm.u"].kind, nodes["dsm.u"].target) == ("noise", "uniform")
    assert (nodes["dsm.t"].kind, nodes["dsm.t"].inputs) == ("fn", ("dsm.u",))
    assert (nodes["dsm.eps"].kind, nodes["dsm.eps"].inputs) == ("noise", ("x0",))
    assert (nodes["dsm.x_t"].kind, nodes["dsm.x_t"].inputs) == ("fn", ("x0", "dsm.t", "dsm.eps"))
    assert nodes["dsm.pred"].inputs == ("dsm.x_t", "dsm.t")
    table = format_table(plan)
    for row in ("compute  dsm.u     uniform(shape=[], low=0.0, high=1.0)  ",
                "compute  dsm.t     t_of_logsnr[VPSDE, t_eps=0.001](dsm.u)",
                "compute  dsm.eps   normal(like=x0)",
                "compute  dsm.x_t   forward_marginal[VPSDE](x0, dsm.t, dsm.eps)",
                "compute  dsm.pred  eps_net(dsm.x_t, dsm.t)",
                "loss     dsm.loss  1 * dsm[eps, sigma2](dsm.pred, x0, dsm.eps, dsm.t)"):
        assert row in table, row
    uniform = format_table(api.plan(GRAPHS / "diffusion_2d.yaml", ["objectives.dsm.time=uniform"]))
    assert "compute  dsm.t     uniform(shape=[], low=0.001, high=1.0)" in uniform


def test_reference_ddpm_graph_plans_without_its_folder():
    plan = api.plan(GRAPHS / "diffusion_32.yaml")
    assert plan.graph.param_counts == {"eps_net": 35_746_307}     # Ho et al. 2020: 35.7M
    assert plan.graph.shapes["dsm.pred"] == (3, 32, 32)


def test_logsnr_time_is_uniform_in_lambda_between_t_eps_and_one():
    vp, u = VPSDE(), torch.linspace(0, 1, 101, dtype=torch.float64)
    t = LogSNRTime(vp, 1e-3)(None, u)
    torch.testing.assert_close(t[[0, -1]], torch.tensor([1.0, 1e-3], dtype=torch.float64))
    lam = vp.lam(t)
    torch.testing.assert_close(lam, vp.lam(1.0) + u * (vp.lam(1e-3) - vp.lam(1.0)))
    with pytest.raises(SpecError, match=r"objectives.dsm: unknown time 'logsrn' \(did you mean 'logsnr'\?\)"):
        api.plan(GRAPHS / "diffusion_2d.yaml", ["objectives.dsm.time=logsrn"])


def test_eta_with_a_sampler_that_has_none_is_a_located_error(runs, capsys):
    assert main(["validate", str(GRAPHS / "diffusion.yaml"), "sample.sampler=heun", "sample.eta=1.0"]) == 2
    assert "sample.eta: sampler 'heun' takes no eta (ddim does; ddpm is ddim with eta = 1)" in capsys.readouterr().err
    with pytest.raises(ComposerError, match=r"sample.eta: sampler 'euler' takes no eta"):
        generate(runs["diffusion"][2], 2, sampler="euler", eta=0.5, steps=2)
