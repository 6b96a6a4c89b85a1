"""Test set-up: CPU only, offline wandb, and a fixture composing small configs."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# Conv formulations by their fixed rule (the autotuner's timing would make runs slower and
# their float rounding machine-dependent); tests/test_autotune.py switches it on.
os.environ.setdefault("SNNTRAIN_AUTOTUNE", "0")

import pytest  # noqa: E402

# Small, fast defaults for tests that train: override in the test where a value matters.
TINY = ("logger=none", "trainer.progress=false", "trainer.epochs=1", "model.hidden=[32]", "T=6",
        "trainer.batch_size=64")


def compose(*overrides: str, tiny: bool = True):
    """Compose ``conf/config.yaml`` with ``overrides`` (after the :data:`TINY` defaults)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=[*(TINY if tiny else ()), *overrides])


@pytest.fixture
def cfg_factory():
    return compose
