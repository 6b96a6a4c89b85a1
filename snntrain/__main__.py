"""``python -m snntrain [overrides]``: Hydra entry point around :func:`train_and_evaluate`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from snntrain.paths import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train one configuration; return ``summary[optimize_metric]`` for sweepers."""
    from snntrain.checkpoint import CheckpointError
    from snntrain.config import ConfigError
    from snntrain.train import TrainingError, train_and_evaluate

    try:
        summary = train_and_evaluate(cfg)
    except (ConfigError, TrainingError, CheckpointError) as e:
        print(f"snntrain: error: {e}", file=sys.stderr, flush=True)
        sys.exit(getattr(e, "exit_code", 2))
    from snntrain.progress import print_summary

    print_summary(summary)
    return summary.get(cfg.get("optimize_metric", "test_accuracy"))


def main() -> None:
    run()


if __name__ == "__main__":
    main()
