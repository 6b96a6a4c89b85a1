"""snntrain: train spiking neural networks with surrogate gradients on JAX.

One flat module per concern (see README, Development): the run (``config``, ``experiment``,
``steps``, ``losses``, ``train``, ``runstate``, ``rundir``, ``checkpoint``, ``writers``,
``progress``, ``parallel``, ``population``, ``workers``, ``worker``), the model
(``surrogates``, ``neurons``, ``encoding``, ``models``, ``convpool``, ``autotune``), the data
(``data``, ``sources``, ``tfds_data``, ``events``, ``event_formats``), and ``optim``,
``registry``, ``synops``, ``export`` (NIR), ``report``, ``runs``, ``compare``, ``plots``.
``python -m snntrain`` is the Hydra entry point (``__main__``, ``startup``, ``callbacks``).
"""

import sys
from pathlib import Path

__version__ = "0.1.0"


def started_from_the_command_line() -> bool:
    """True under ``python -m snntrain`` and the ``snntrain`` script; False when some other
    program imported :mod:`snntrain.__main__` and calls its ``main`` (a notebook kernel, say),
    whose process must not be replaced by the huge-page restart. (Here, not in a module that
    imports more: ``snntrain.__main__`` installs its signal handlers on it before any other
    import.)"""
    arg0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return arg0.name == "snntrain" or (
        arg0.name == "__main__.py" and arg0.parent.name == "snntrain"
    )
