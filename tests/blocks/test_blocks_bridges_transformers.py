"""transformers models as blocks: a CLIP text encoder from config keywords, its outputs, the
meta device, pretrained folders, and the encoder frozen where no optimizer lists it."""
import pytest
import torch

from composer import api
from composer.blocks import BLOCKS
from composer.errors import SpecError

pytest.importorskip("transformers")

CLIP = {"vocab_size": 50, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "max_position_embeddings": 8, "bos_token_id": 0, "eos_token_id": 1,
        "pad_token_id": 1}


def test_clip_text_encoder_gives_hidden_states_and_pooled():
    enc = BLOCKS["transformers.CLIPTextModel"](**CLIP)
    ids = torch.randint(2, 50, (3, 7))
    assert enc(ids).shape == (3, 7, 16) and enc.pooled(ids).shape == (3, 16)
    assert torch.equal(enc(ids), enc.model(ids).last_hidden_state)


def test_config_keywords_are_checked_with_did_you_mean():
    graph = {"name": "t", "inputs": {"x": {"source": "digits", "size": 8}},
             "modules": {"enc": {"block": "transformers.CLIPTextModel", **CLIP, "hiden_size": 16}},
             "flow": {"h": "enc(x)"}, "train": {"steps": 1, "batch": 2}}
    with pytest.raises(SpecError, match=r"modules\.enc\.hiden_size: block transformers\.CLIPTextModel has no "
                       r"argument 'hiden_size' \(did you mean 'hidden_size'\?\)"):
        api.validate(api.from_dict(graph))


def test_builds_and_runs_on_the_meta_device():
    with torch.device("meta"):
        enc = BLOCKS["transformers.CLIPTextModel"](**CLIP)
        out = enc(torch.zeros(2, 7, dtype=torch.long))
    assert enc.meta_shapes and out.is_meta and out.shape == (2, 7, 16)


def test_a_save_pretrained_folder_round_trips(tmp_path):
    enc = BLOCKS["transformers.CLIPTextModel"](**CLIP)
    enc.model.save_pretrained(tmp_path / "clip")
    assert not list((tmp_path / "clip").glob("*.bin"))
    loaded = BLOCKS["transformers.CLIPTextModel"](pretrained=str(tmp_path / "clip"))
    ids = torch.randint(2, 50, (2, 7))
    assert torch.equal(loaded.eval()(ids), enc.eval()(ids))
    with pytest.raises(ValueError, match=r"holds a 'clip_text_model' model, not 'bert'"):
        BLOCKS["transformers.BertModel"](pretrained=str(tmp_path / "clip"))


def test_a_pretrained_encoder_no_optimizer_lists_is_frozen(tmp_path):
    enc = BLOCKS["transformers.CLIPTextModel"](**CLIP)
    enc.model.save_pretrained(tmp_path / "clip")
    graph = {"name": "frozen_encoder", "inputs": {"x": {"source": "digits", "size": 8}},
             "modules": {"enc": {"block": "transformers.CLIPTextModel", "pretrained": str(tmp_path / "clip")},
                         "head": {"block": "Linear", "in_features": 16, "out_features": 64}},
             "flow": {"ids": "rearrange(x.y, pattern='b -> b 1')", "h": "enc(ids)",
                      "flat": "rearrange(h, pattern='b 1 d -> b d')", "pred": "head(flat)",
                      "target": "rearrange(x, pattern='b c h w -> b (c h w)')"},
             "objectives": {"fit": {"recipe": "reconstruction", "prediction": "pred", "target": "target"}},
             "optimizers": {"head": {"params": ["head"], "lr": 1e-3}},
             "train": {"steps": 2, "batch": 4}}
    run = api.runner(api.from_dict(graph), cpu=True)
    assert not any(p.requires_grad for p in run.raw["enc"].parameters()) and not run.raw["enc"].training
    ids = torch.randint(2, 10, (2, 1))
    assert torch.equal(run.raw["enc"](ids), enc.eval()(ids))
    run.step()
    graph["modules"]["enc"].pop("pretrained")
    with pytest.raises(SpecError, match=r"modules\.enc: module 'enc' has [\d,]+ parameters but no optimizer "
                       r"updates it: .*or a bridged block 'pretrained:'"):
        api.validate(api.from_dict(graph))
