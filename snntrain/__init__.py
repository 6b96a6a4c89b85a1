"""snntrain: train spiking neural networks with surrogate gradients on JAX.

One flat module per concern (see README, Development): the run (``config``, ``experiment``,
``steps``, ``losses``, ``train``, ``runstate``, ``rundir``, ``checkpoint``, ``writers``,
``progress``, ``parallel``, ``population``), the model (``surrogates``, ``neurons``,
``encoding``, ``models``, ``convpool``, ``autotune``), the data (``data``, ``sources``,
``tfds_data``, ``events``, ``event_formats``), and ``optim``, ``registry``, ``synops``,
``export`` (NIR), ``report``, ``runs``, ``compare``, ``plots``. ``python -m snntrain`` is the
Hydra entry point (``__main__``, ``startup``, ``callbacks``).
"""

__version__ = "0.1.0"
