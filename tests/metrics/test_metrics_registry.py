import inspect

from composer.metrics import METRICS


def test_every_metric_takes_samples_and_table_then_keyword_options():
    assert set(METRICS) == {"mixture", "digits"}
    for name, metric in METRICS.items():
        params = list(inspect.signature(metric).parameters.values())
        assert [p.name for p in params[:2]] == ["samples", "table"], name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not p.empty for p in params[2:]), name
