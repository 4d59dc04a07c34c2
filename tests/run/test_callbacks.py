"""Callbacks: the hook points in the order a run meets them, the default callbacks, callbacks from
the API and from a plugin (by name in `train.callbacks`), replacing a default, the earlier
callback interface, and the errors for a bad `train.callbacks` at its YAML line."""
import json

import pytest
import yaml

from composer import api, plugins, registry
from composer.errors import SpecError
from composer.run.callbacks import HOOKS, Callback
from composer.run.default_callbacks import CALLBACKS, DEFAULTS
from composer.run.trainer import Trainer
from specs import small_2d_gan

RUN = ["train.steps=3", "train.batch=16", "train.log_every=2", "train.sample_every=2", "train.checkpoint_every=2",
       "train.threads=1", "sample.n=16", "eval.n=64"]


class Recorder(Callback):
    """Every hook it sees, with the argument that tells the calls apart."""

    def __init__(self):
        self.events = []

    def on_run_start(self, trainer):
        self.events.append(("run_start",))

    def on_step_end(self, trainer, step, logs):
        self.events.append(("step_end", step))

    def on_log(self, trainer, step, means):
        self.events.append(("log", step, sorted(means)))

    def on_sample(self, trainer, path):
        self.events.append(("sample", path.name))

    def on_checkpoint(self, trainer, folder):
        self.events.append(("checkpoint", folder.name))

    def on_loop_end(self, trainer):
        self.events.append(("loop_end",))

    def on_eval(self, trainer, results):
        self.events.append(("eval", results["step"], "mixture.modes" in results))

    def on_run_end(self, trainer, results):
        self.events.append(("run_end", results["step"]))

    def on_close(self, trainer):
        self.events.append(("close",))


def test_hooks_run_in_order_over_a_short_run(tmp_path):
    recorder = Recorder()
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", RUN, quiet=True, callbacks=[recorder])
    terms = ["gan.D_fake", "gan.D_real", "gan.G"]
    assert recorder.events == [
        ("run_start",),
        ("step_end", 1),
        ("log", 2, terms), ("sample", "step_000002.png"), ("checkpoint", "step_000002"), ("step_end", 2),
        ("log", 3, terms), ("step_end", 3),
        ("loop_end",),
        ("checkpoint", "step_000003"), ("sample", "final.png"), ("eval", 3, True), ("run_end", 3),
        ("close",),
    ]
    assert {e[0] for e in recorder.events} == {h[3:] for h in HOOKS}      # every hook point was met


def test_an_interrupt_checkpoints_then_ends_the_loop_and_closes(tmp_path, monkeypatch):
    from conftest import interrupt_at

    recorder = Recorder()
    runner = api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True)
    interrupt_at(monkeypatch, runner, 1)
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, tmp_path / "run", quiet=True, callbacks=[recorder]).run()
    assert recorder.events == [("run_start",), ("step_end", 1), ("checkpoint", "step_000001"), ("loop_end",),
                               ("close",)]


def test_the_defaults_in_their_order_then_the_graphs_then_the_apis(tmp_path, scratch):
    class Named(Callback):
        """A callback a plugin registers."""

    plugins.register_plugin("cb_order", lambda r: r.callbacks.add("named", Named))
    data = {**small_2d_gan(), "plugins": ["cb_order"]}
    data["train"] = {**data["train"], "callbacks": ["named"]}
    given = Recorder()
    trainer = Trainer(api.runner(api.from_dict(data, RUN), cpu=True), tmp_path / "run", quiet=True, callbacks=[given])
    assert [c.name for c in trainer.callbacks[:7]] == ["trackers", "progress", "weights", "samples", "checkpoints",
                                                       "eval", "plots"]
    assert [type(c) for c in trainer.callbacks] == [*DEFAULTS, Named, Recorder]
    trainer.release()


def test_a_plugin_callback_named_in_the_graph_runs(tmp_path, scratch):
    steps = []

    class CountSteps(Callback):
        """Counts the steps it sees."""

        def on_step_end(self, trainer, step, logs):
            steps.append(step)

    plugins.register_plugin("cb_plugin", lambda r: r.callbacks.add("count_steps", CountSteps))
    data = {**small_2d_gan(), "plugins": ["cb_plugin"]}
    data["train"] = {**data["train"], "callbacks": ["count_steps"]}
    api.train(api.from_dict(data), tmp_path / "run", RUN, quiet=True)
    assert steps == [1, 2, 3]
    assert registry.get("callbacks").origin["count_steps"] == "plugin cb_plugin"
    assert yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())["train"]["callbacks"] == ["count_steps"]


def test_a_callback_named_as_a_default_replaces_it(tmp_path):
    class NoPlots(Callback):
        name = "plots"

    class OwnEval(Callback):
        """Results of its own, no eval.json."""

        name = "eval"

        def on_run_end(self, trainer, results):
            results["own"] = 1.0
            trainer.call("on_eval", results)

    recorder = Recorder()
    results = api.train(api.from_dict(small_2d_gan()), tmp_path / "run", RUN, quiet=True,
                        callbacks=[NoPlots(), OwnEval(), recorder])
    assert results["own"] == 1.0 and "mixture.modes" not in results
    assert ("eval", 3, False) in recorder.events
    run = tmp_path / "run"
    assert not (run / "loss.png").exists() and not (run / "eval.json").exists()
    assert (run / "weights.safetensors").is_file() and (run / "samples" / "final.png").is_file()


def test_a_plugin_callback_replaces_a_default_from_the_graph(tmp_path, scratch):
    class NoSamples(Callback):
        """Writes no sample grids."""

        name = "samples"

    plugins.register_plugin("cb_quiet", lambda r: r.callbacks.add("no_samples", NoSamples))
    data = {**small_2d_gan(), "plugins": ["cb_quiet"]}
    data["train"] = {**data["train"], "callbacks": ["no_samples"]}
    api.train(api.from_dict(data), tmp_path / "run", RUN, quiet=True)
    assert not (tmp_path / "run" / "samples").exists() and (tmp_path / "run" / "eval.json").is_file()


class OldStyle(Callback):
    """A callback written for the earlier interface: on_step and on_end."""

    def __init__(self):
        self.events = []

    def on_step(self, trainer, step, logs):
        self.events.append(("step", step))

    def on_end(self, trainer, results):
        self.events.append(("end", results["step"]))


class DuckTyped:
    """Not a Callback: the four methods the Trainer called before the hook points."""

    def __init__(self):
        self.events = []

    def on_step(self, trainer, step, logs):
        self.events.append(("step", step))

    def on_checkpoint(self, trainer, folder):
        self.events.append(("checkpoint", folder.name))

    def on_sample(self, trainer, path):
        self.events.append(("sample", path.name))

    def on_end(self, trainer, results):
        self.events.append(("end", results["step"]))


def test_callbacks_of_the_earlier_interface_are_called_as_before(tmp_path):
    old, duck = OldStyle(), DuckTyped()
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", RUN, quiet=True, callbacks=[old, duck])
    assert old.events == [("step", 1), ("step", 2), ("step", 3), ("end", 3)]
    assert duck.events == [("step", 1), ("sample", "step_000002.png"), ("checkpoint", "step_000002"), ("step", 2),
                           ("step", 3), ("checkpoint", "step_000003"), ("sample", "final.png"), ("end", 3)]


def test_an_unknown_callback_fails_at_its_yaml_line_before_the_run_folder_exists(tmp_path):
    data = small_2d_gan()
    data["train"] = {**data["train"], "callbacks": ["samples", "plotz"]}
    graph = tmp_path / "g.yaml"
    graph.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(i for i, text in enumerate(graph.read_text().splitlines(), 1) if "- plotz" in text)
    with pytest.raises(SpecError, match=rf"g\.yaml:{line}:\d+: train\.callbacks\.1: unknown callback 'plotz' "
                                        r"\(did you mean 'plots'\?\)"):
        api.train(api.load(graph), tmp_path / "run", RUN, quiet=True)
    assert not (tmp_path / "run").exists()
    with pytest.raises(SpecError, match=r"train\.callbacks\.1: unknown callback 'plotz'"):
        api.validate(graph)                                     # composer validate checks it too


def test_a_graph_callback_needing_arguments_is_named(tmp_path, scratch):
    class Needs(Callback):
        """Takes an argument."""

        def __init__(self, every):
            self.every = every

    plugins.register_plugin("cb_args", lambda r: r.callbacks.add("needs", Needs))
    data = {**small_2d_gan(), "plugins": ["cb_args"]}
    data["train"] = {**data["train"], "callbacks": ["needs"]}
    runner = api.runner(api.from_dict(data, RUN), cpu=True)
    with pytest.raises(SpecError, match=r"train\.callbacks\.0: callback 'needs' must take no arguments: .*every"):
        Trainer(runner, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("names, message", [
    ([3], r"train\.callbacks\.0: a callback name is a string, got 3"),
    (["plots", "plots"], r"train\.callbacks\.1: callback 'plots' is named twice"),
    ("plots", r"train\.callbacks: expected list, got 'plots'"),
])
def test_train_callbacks_is_a_list_of_names(names, message):
    data = small_2d_gan()
    data["train"] = {**data["train"], "callbacks": names}
    with pytest.raises(SpecError, match=message):
        api.from_dict(data)


def test_the_registry_lists_the_defaults_with_their_docs():
    listing = {item["name"]: item for item in api.entries("callbacks")}
    assert sorted(listing) == sorted(c.name for c in DEFAULTS)
    assert listing["checkpoints"]["doc"].startswith("A checkpoint every `train.checkpoint_every` steps")
    assert all(CALLBACKS[name] is cls for name, cls in ((c.name, c) for c in DEFAULTS))


def test_a_resume_may_add_callbacks(tmp_path):
    run = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), run, RUN, quiet=True)
    more = ["train.steps=4", "train.callbacks=[plots]"]
    results = api.train(api.from_dict(small_2d_gan()), run, RUN + more, resume=True, quiet=True, accept_changes=True)
    assert results["step"] == 4
    assert json.loads((run / "changes.jsonl").read_text())["changes"] == ["train.steps: 3 -> 4"]
