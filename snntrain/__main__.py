"""``python -m snntrain [overrides]``: Hydra entry point around :func:`train_and_evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from snntrain.paths import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train one configuration; return ``summary[optimize_metric]`` for sweepers."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from snntrain.checkpoint import CheckpointError
    from snntrain.config import ConfigError
    from snntrain.train import Preempted, TrainingError, train_and_evaluate

    try:
        summary = train_and_evaluate(cfg)
    except (ConfigError, TrainingError, CheckpointError) as e:
        print(f"snntrain: error: {e}", file=sys.stderr, flush=True)
        _record_failure(e)
        if HydraConfig.get().mode == RunMode.MULTIRUN and not isinstance(e, Preempted):
            raise  # one failed job, not the end of the sweep: Hydra records it and goes on
        sys.exit(getattr(e, "exit_code", 2))
    except Exception as e:
        _record_failure(e)
        raise
    from snntrain.progress import print_summary

    print_summary(summary)
    return summary.get(cfg.get("optimize_metric", "test_accuracy"))


def _record_failure(e: BaseException) -> None:
    """Leave ``summary.json`` with the status and the error, so reports list the run as failed."""
    from hydra.core.hydra_config import HydraConfig

    from snntrain.train import Diverged, Preempted
    from snntrain.writers import write_json

    path = Path(HydraConfig.get().runtime.output_dir) / "summary.json"
    if isinstance(e, Preempted) or path.exists():  # a pre-empted run wrote its own
        return
    status = "diverged" if isinstance(e, Diverged) else "failed"
    write_json(path, {"status": status, "error": f"{type(e).__name__}: {e}"})


def started_from_the_command_line() -> bool:
    """True under ``python -m snntrain`` and the ``snntrain`` script; False when some other
    program imported this module and calls :func:`main` (a notebook kernel, say), whose
    process must not be replaced by the huge-page restart."""
    arg0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return arg0.name == "snntrain" or (
        arg0.name == "__main__.py" and arg0.parent.name == "snntrain"
    )


def main() -> None:
    from snntrain.hostenv import reexec_with_hugepages

    if started_from_the_command_line():
        reexec_with_hugepages()  # (XLA:CPU's per-step temporaries fault in 512x less often)
    run()


if __name__ == "__main__":
    main()
