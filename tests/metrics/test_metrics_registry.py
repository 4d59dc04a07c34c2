import inspect

from composer.metrics import METRICS


def test_every_metric_takes_samples_and_table_or_the_runner_then_keyword_options():
    assert set(METRICS) == {"mixture", "digits", "translation"}
    for name, metric in METRICS.items():
        params = list(inspect.signature(metric).parameters.values())
        if params[0].name == "runner":
            assert params[0].kind is inspect.Parameter.KEYWORD_ONLY, name
            options = params[1:]
        else:
            assert [p.name for p in params[:2]] == ["samples", "table"], name
            options = params[2:]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options), name
        assert all(p.default is not p.empty for p in options) or params[0].name == "runner", name
