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
    target = Path(args.nir).expanduser()
    try:
        require_nir()
        if target.is_file() and not _is_hdf5(target):  # (--nir <run>/config.yaml replaced the
            # run's config with HDF5: it could be neither exported nor resumed after)
            raise ConfigError(f"--nir {args.nir}: the file exists and is not a NIR (HDF5) "
                              "file; not overwritten: choose another path")
        if not (run / "config.yaml").exists():
            raise ConfigError(_no_config(run))
        try:
            cfg = OmegaConf.load(run / "config.yaml")
        except Exception as e:  # noqa: BLE001 - YAML's errors: no common base to name
            raise ConfigError(f"{run / 'config.yaml'} is not readable YAML ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
        graph = to_nir(_trained(run, cfg), cfg, dt=args.dt)
        if (bad := _not_finite(graph)) is not None:  # (--dt 1.7e308 wrote tau = inf)
            raise ConfigError(f"--dt {args.dt}: the graph's {bad} would not be finite at this "
                              "dt; give the time step of the neurons' beta (their dt)")
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as e:
        print(f"snntrain: error: {e}", file=sys.stderr)
        return 2
    problem = None
    parent = Path(args.nir).expanduser().parent
    if not parent.is_dir():  # (a file there was said not to exist)
        problem = (f"{Path(args.nir).parent} is a file, not a directory" if parent.exists()
                   else f"directory {Path(args.nir).parent} does not exist")
    else:
        try:
            nir.write(args.nir, graph)
        except OSError as e:
            problem = str(e)
    if problem is not None:
        print(f"snntrain: error: --nir {args.nir}: cannot write it: {problem}", file=sys.stderr)
        return 2
    print(f"wrote {args.nir}: {len(graph.nodes)} nodes, dt={graph.metadata['dt']}")
    if (status := _status(run)) not in (None, "completed"):
        print(f"note: {run} is {status} (its summary.json): the graph holds the parameters of "
              "its last checkpoint", file=sys.stderr)
    return 0


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def _not_finite(graph: Any) -> str | None:
    """The first ``<node>.<parameter>`` of ``graph`` that is not finite, or None."""
    import numpy as np

    for name, node in graph.nodes.items():
        for key, value in vars(node).items():
            a = np.asarray(value) if isinstance(value, (np.ndarray, float, int)) else None
            if a is not None and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                return f"{name}.{key}"
    return None


def _status(run: Path) -> str | None:
    import json

    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary.get("status") if isinstance(summary, dict) else None


if __name__ == "__main__":
    sys.exit(main())
