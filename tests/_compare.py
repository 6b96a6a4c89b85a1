"""Comparing two runs' records and summaries (population members against solo runs)."""

import pytest

# The evaluation of a population member runs inside another XLA program than its solo run's
# (the body of the members' map) and XLA:CPU may sum the small products of its last layers
# (the readout's B x N . N x C matmul, the log-softmax) in another order: evaluation values may
# differ in the last float32 bits (seen: 2e-8 relative in a test loss). Training records and
# parameters must be bit-identical; evaluation floats agree to EVAL_RTOL.
EVAL_RTOL = 1e-6


def assert_same_run(a, b, what: str = "", train_exact: bool = True) -> None:
    """Records or summaries ``a == b``: equal keys and non-float values; floats exactly equal
    in training records, within :data:`EVAL_RTOL` in evaluation records and summaries."""
    if isinstance(a, list):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            exact = train_exact and x.get("split") == "train"
            assert_same_run(x, y, f"{what}[{i}]", exact)
        return
    assert a.keys() == b.keys(), what
    for k, v in b.items():
        if isinstance(v, dict):
            assert_same_run(a[k], v, f"{what}.{k}", train_exact)
        elif isinstance(v, float) and not train_exact:
            assert a[k] == pytest.approx(v, rel=EVAL_RTOL, abs=1e-12), f"{what}.{k}"
        else:
            assert a[k] == v, f"{what}.{k}"
