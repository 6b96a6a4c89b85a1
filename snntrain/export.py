"""``python -m snntrain.export RUN_DIR --nir model.nir``: a trained run (or one population
member) as a NIR graph file.

The conversion itself, ``to_nir`` / ``from_nir`` / ``load``, is :mod:`snntrain.nirgraph`; its
names are importable from here too (``snntrain.export.to_nir``), as documented.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from snntrain.errors import ConfigError
from snntrain.nirgraph import NIRError, from_nir, load, nir, nir_params, require_nir, to_nir

__all__ = ["NIRError", "from_nir", "load", "main", "nir_params", "to_nir"]


def _trained(run: Path, cfg: Any) -> Any:
    """The trained model of a run directory, or the newest parameters of a population
    member's directory (``<population>/members/<name>``: the population's checkpoints hold
    them; :func:`to_nir` builds the member's model)."""
    from omegaconf import OmegaConf

    from snntrain import experiment, population

    if population.is_population(cfg):
        names = sorted(p.name for p in (run / "members").glob("*") if p.is_dir())
        raise ConfigError(f"{run} is a population of {len(names)} members; export one of "
                          f"them: python -m snntrain.export {run / 'members' / '<name>'} "
                          f"--nir <file> (names: {', '.join(names[:4])}"
                          f"{', ...' if len(names) > 4 else ''})")
    pop_dir = run.absolute().parent.parent
    if run.absolute().parent.name == "members" and (pop_dir / "config.yaml").is_file() and (
            population.is_population(OmegaConf.load(pop_dir / "config.yaml"))):
        params = population.params_of(pop_dir)
        if run.name not in params:
            raise ConfigError(f"{run}: no checkpoint of member {run.name} in "
                              f"{pop_dir / 'checkpoints'}")
        return params[run.name]
    return experiment.model_of(run, cfg)  # (built without the data: to_nir takes it as is)


def _no_config(run: Path) -> str:
    """Why ``run`` has no ``config.yaml``: a run that failed before training (its summary
    says so), or no run directory."""
    import json

    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    if isinstance(summary, dict) and summary.get("status") == "failed":
        return (f"{run} holds a run that failed before it trained (nothing to export): "
                f"{summary.get('error') or 'see its summary.json'}")
    return f"{run / 'config.yaml'} not found: RUN_DIR must be a run directory"


def main(argv: list[str] | None = None) -> int:
    """``python -m snntrain.export RUN_DIR --nir model.nir``: export a trained run."""
    parser = argparse.ArgumentParser(prog="python -m snntrain.export",
                                     description="Export a trained snntrain run to NIR.")
    parser.add_argument("run_dir", help="a run directory (config.yaml + checkpoints/)")
    parser.add_argument("--nir", required=True, help="the .nir file to write")
    parser.add_argument("--dt", type=float, default=None, help="time step (default: neuron dt)")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from snntrain.checkpoint import CheckpointError

    run = Path(args.run_dir)
    try:
        require_nir()
        if not (run / "config.yaml").exists():
            raise ConfigError(_no_config(run))
        try:
            cfg = OmegaConf.load(run / "config.yaml")
        except Exception as e:  # noqa: BLE001 - YAML's errors: no common base to name
            raise ConfigError(f"{run / 'config.yaml'} is not readable YAML ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
        graph = to_nir(_trained(run, cfg), cfg, dt=args.dt)
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as e:
        print(f"snntrain: error: {e}", file=sys.stderr)
        return 2
    problem = None
    if not Path(args.nir).expanduser().parent.is_dir():
        problem = f"directory {Path(args.nir).parent} does not exist"
    else:
        try:
            nir.write(args.nir, graph)
        except OSError as e:
            problem = str(e)
    if problem is not None:
        print(f"snntrain: error: --nir {args.nir}: cannot write it: {problem}", file=sys.stderr)
        return 2
    print(f"wrote {args.nir}: {len(graph.nodes)} nodes, dt={graph.metadata['dt']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
