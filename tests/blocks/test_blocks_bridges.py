"""The bridge mechanism: registry namespaces (lookup, did you mean, arguments, listings), a
missing library, `pretrained:` sources (local folders, files, refused pickles, the hub cache)."""
import subprocess
import sys

import pytest
import torch

from composer import api
from composer.blocks import BLOCKS
from composer.errors import ComposerError, SpecError
from composer.registry import Namespace, Registry
from conftest import usable

pytest.importorskip("diffusers")

UNET = {"block": "diffusers.UNet2DModel", "sample_size": 8, "in_channels": 1, "out_channels": 1,
        "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
        "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"]}


def unet_graph(**module):
    return {"name": "bridged", "inputs": {"x0": {"source": "digits", "size": 8}},
            "modules": {"eps_net": {**UNET, **module}},
            "objectives": {"dsm": {"recipe": "denoising", "data": "x0", "model": "eps_net", "schedule": "vp",
                                   "target": "eps"}},
            "optimizers": {"eps_net": {"params": ["eps_net"], "lr": 1e-3}},
            "train": {"steps": 3, "batch": 8}, "sample": {"objective": "dsm", "sampler": "ddim", "steps": 3, "n": 4}}


def unet_args():
    return {k: v for k, v in UNET.items() if k != "block"}


# ------------------------------------------------------------------------------ the registry
class Letters(Namespace):
    library, extra, shown, doc = "string", "letters", "abc.<Letter>", "letters as blocks"

    def entry(self, name):
        self.load()
        if name not in ("A", "B"):
            raise KeyError(name)
        return lambda *, size=1: name * size

    def names(self):
        return ["A", "B"]


def test_namespace_lookup_unknown_and_arguments():
    r = Registry("block", {"Linear": object})
    r.namespace("abc", Letters())
    assert "abc.A" in r and r["abc.B"](size=2) == "BB"
    assert "abc.C" not in r and "abc" not in r and "abc." not in r and ["abc"] not in r
    assert list(r) == ["Linear"] and len(r) == 1          # namespaces are not enumerated
    assert r.unknown("abc.a") == "unknown block 'abc.a' (did you mean 'abc.A'?)"
    assert [a.name for a in r.arguments("abc.A")] == ["size"] and r.accepts("abc.A", "size")
    assert [e["name"] for e in r.describe()] == ["Linear", "abc.<Letter>"]
    with pytest.raises(ComposerError, match="namespace 'abc' is already registered"):
        r.namespace("abc", Letters())
    with pytest.raises(ComposerError, match="'abc' is the name of a namespace"):
        r.add("abc", object)


def test_block_names_of_libraries_resolve_with_config_signatures():
    assert "diffusers.UNet2DModel" in BLOCKS and "transformers.CLIPTextModel" in BLOCKS
    assert ("timm" in BLOCKS) == usable("timm")             # the bare prefix: a model name is an argument
    assert "diffusers.DDPMScheduler" not in BLOCKS          # not a model: nothing else is importable
    assert "diffusers.ModelMixin" not in BLOCKS and "transformers.CLIPTextConfig" not in BLOCKS
    assert "diffusers.os" not in BLOCKS and "diffusers._import_structure" not in BLOCKS
    assert BLOCKS.accepts("diffusers.UNet2DModel", "block_out_channels")
    assert BLOCKS.accepts("diffusers.UNet2DModel", "timestep_scale")
    assert not BLOCKS.accepts("diffusers.UNet2DModel", "block_out_channel")
    assert BLOCKS.accepts("transformers.CLIPTextModel", "hidden_size")
    assert "DiffusersDenoiser" in BLOCKS.doc("diffusers.UNet2DModel")


def test_unknown_library_names_suggest_the_library_s_own():
    assert BLOCKS.unknown("diffusers.UNet2DModl") == "unknown block 'diffusers.UNet2DModl' (did you mean 'diffusers.UNet2DModel'?)"
    assert "did you mean 'transformers.CLIPTextModel'" in BLOCKS.unknown("transformers.CLIPTextModl")
    assert "expected one of" not in BLOCKS.unknown("diffusers.Zzzzzzzzzzzzzzz")   # no list of hundreds


@pytest.mark.slow
def test_listing_names_the_namespaces_without_importing_them():
    code = ("import sys; from composer import api; names = [e['name'] for e in api.entries('blocks')]; "
            "print(names[-3:], [m for m in ('diffusers', 'timm', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['diffusers.<ModelClass>', 'timm', 'transformers.<ModelClass>'] []"


@pytest.mark.slow
def test_validate_does_not_import_libraries_a_graph_does_not_use():
    code = ("import sys; from composer import api; from specs import small_dcgan; "
            "api.validate(api.from_dict(small_dcgan())); "
            "print([m for m in ('diffusers', 'timm', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, 'tests'); {code}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_library_is_reported_at_the_block_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)       # `import diffusers` now fails
    assert "diffusers.UNet2DModel" not in BLOCKS
    with pytest.raises(SpecError, match=r"modules\.eps_net\.block: block 'diffusers\.UNet2DModel' needs the "
                       r"'diffusers' library, which is not installed .*pip install 'composer-graphs\[diffusers\]'"):
        api.validate(api.from_dict(unet_graph()))


@pytest.mark.parametrize("library, block", [("timm", "timm"), ("transformers", "transformers.CLIPTextModel")])
def test_every_bridge_names_its_extra(monkeypatch, library, block):
    monkeypatch.setitem(sys.modules, library, None)
    assert block not in BLOCKS
    assert BLOCKS.unknown(block).endswith(f"pip install 'composer-graphs[{library}]'")


def test_a_misspelt_config_keyword_is_located_with_did_you_mean():
    graph = unet_graph()
    graph["modules"]["eps_net"]["block_out_channel"] = graph["modules"]["eps_net"].pop("block_out_channels")
    with pytest.raises(SpecError, match=r"modules\.eps_net\.block_out_channel: block diffusers\.UNet2DModel has "
                       r"no argument 'block_out_channel' \(did you mean 'block_out_channels'\?\)"):
        api.validate(api.from_dict(graph))


def test_values_must_be_yaml_data_and_lists_become_tuples():
    block = BLOCKS["diffusers.UNet2DModel"](**unet_args())
    assert block.model.config.block_out_channels == (8, 16)
    with pytest.raises(TypeError, match="'block_out_channels' takes YAML data"):
        BLOCKS["diffusers.UNet2DModel"](**{**unet_args(), "block_out_channels": [8, object()]})


# ------------------------------------------------------------------------------ pretrained
def saved_unet(tmp_path):
    block = BLOCKS["diffusers.UNet2DModel"](**unet_args())
    block.model.save_pretrained(tmp_path / "unet")
    return block, tmp_path / "unet"


def test_a_save_pretrained_folder_loads_with_identical_outputs(tmp_path):
    block, folder = saved_unet(tmp_path)
    loaded = BLOCKS["diffusers.UNet2DModel"](pretrained=str(folder))      # config from config.json
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    assert torch.equal(loaded(x, t), block(x, t))


def test_pretrained_paths_are_relative_to_the_graph_file(tmp_path, monkeypatch):
    _, folder = saved_unet(tmp_path)
    graph = tmp_path / "g.yaml"
    import yaml

    graph.write_text(yaml.safe_dump(unet_graph(pretrained="unet")))
    monkeypatch.chdir("/")
    assert api.validate(graph).spec.modules[0].args["pretrained"] == str(folder.resolve())


def test_a_base_file_s_pretrained_paths_stay_relative_to_the_base(tmp_path, monkeypatch):
    import yaml

    (tmp_path / "graphs" / "unet").mkdir(parents=True)
    graph = unet_graph(pretrained="unet")
    graph["modules"]["enc"] = {"block": "transformers.CLIPTextModel", "pretrained": "org/clip"}   # a hub id
    (tmp_path / "graphs" / "base.yaml").write_text(yaml.safe_dump(graph))
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "child.yaml").write_text("extends: ../graphs/base.yaml\n")
    monkeypatch.chdir("/")
    spec = api.load(tmp_path / "exp" / "child.yaml")
    assert spec.data["modules"]["eps_net"]["pretrained"] == "../graphs/unet"
    args = {m.name: m.args["pretrained"] for m in spec.modules}
    assert args == {"eps_net": str((tmp_path / "graphs" / "unet").resolve()), "enc": "org/clip"}


def test_a_run_of_a_graph_with_a_relative_pretrained_path_reopens_from_anywhere(tmp_path, monkeypatch):
    import yaml

    block, _ = saved_unet(tmp_path)
    graph = unet_graph(pretrained="unet")
    for key in unet_args():                  # the architecture comes from the folder's config.json
        graph["modules"]["eps_net"].pop(key)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(graph))
    monkeypatch.chdir("/")
    api.train(tmp_path / "g.yaml", tmp_path / "run", ["train.steps=1"], quiet=True)
    run = api.open_run(tmp_path / "run")
    assert run.raw["eps_net"].model.config.block_out_channels == (8, 16)


def test_a_single_safetensors_file_loads_into_the_yaml_config(tmp_path):
    from safetensors.torch import save_file

    block = BLOCKS["diffusers.UNet2DModel"](**unet_args())
    save_file(block.model.state_dict(), tmp_path / "w.safetensors")
    loaded = BLOCKS["diffusers.UNet2DModel"](**unet_args(), pretrained=str(tmp_path / "w.safetensors"))
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    assert torch.equal(loaded(x, t), block(x, t))
    wider = {**unet_args(), "block_out_channels": [8, 32]}
    with pytest.raises(ValueError, match=r"does not match the block's weights: .*shape mismatches "
                       r"down_blocks\.1\..*\[16, 8, 3, 3\] \(the block's is \[32, 8, 3, 3\]\)"):
        BLOCKS["diffusers.UNet2DModel"](**wider, pretrained=str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected keys mid_block"):
        BLOCKS["diffusers.UNet2DModel"](**unet_args(), mid_block_type=None, pretrained=str(tmp_path / "w.safetensors"))


def test_a_mismatching_file_is_caught_by_validate_on_the_meta_device(tmp_path):
    from safetensors.torch import save_file

    save_file({"conv_in.weight": torch.zeros(1)}, tmp_path / "w.safetensors")
    with pytest.raises(SpecError, match=r"modules\.eps_net: cannot build block: pretrained: .* missing keys"):
        api.validate(api.from_dict(unet_graph(pretrained=str(tmp_path / "w.safetensors"))))


def test_pickled_weights_are_refused(tmp_path):
    torch.save({}, tmp_path / "model.bin")
    for where in (tmp_path / "model.bin", tmp_path):
        with pytest.raises(ValueError, match=r"holds pickled weights \(\.bin\); composer reads safetensors only"):
            BLOCKS["diffusers.UNet2DModel"](**unet_args(), pretrained=str(where))


def test_a_folder_of_another_class_is_refused(tmp_path):
    _, folder = saved_unet(tmp_path)
    with pytest.raises(ValueError, match="holds a UNet2DModel, not a AutoencoderKL"):
        BLOCKS["diffusers.AutoencoderKL"](pretrained=str(folder))


def test_hub_ids_are_read_from_the_local_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"'org/tiny-unet' is not a local path and is not in the local Hugging "
                       r"Face cache \(HF_HUB_OFFLINE is set\).*allow_download: true"):
        BLOCKS["diffusers.UNet2DModel"](pretrained="org/tiny-unet")
    block, folder = saved_unet(tmp_path)             # the cache's layout: refs/main -> snapshots/<commit>/
    repo = tmp_path / "cache" / "models--org--tiny-unet"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    loaded = BLOCKS["diffusers.UNet2DModel"](pretrained="org/tiny-unet")
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    assert torch.equal(loaded(x, t), block(x, t))


def test_a_missing_local_path_says_where_it_looked(tmp_path):
    with pytest.raises(ValueError, match=r"pretrained: \./nowhere not found \(relative paths are read from the graph"):
        BLOCKS["diffusers.UNet2DModel"](pretrained="./nowhere")
