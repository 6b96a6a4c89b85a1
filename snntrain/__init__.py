"""snntrain: train spiking neural networks with surrogate gradients on JAX.

Modules (one per concern): ``surrogates`` (spike functions), ``neurons`` (neuron contract and
the time loop), ``encoding`` (input encoders), ``models`` (SNN models), ``data`` (datasets and
the input pipeline), ``tfds_data`` (tensorflow-datasets loading), ``optim`` (optimizers),
``parallel`` (data parallelism), ``checkpoint``, ``writers`` (metrics.jsonl, wandb), ``train``
(``train_and_evaluate``), ``report`` (sweep reports), ``plots``, ``hostenv`` (huge-page malloc
for XLA:CPU). ``python -m snntrain`` is the Hydra entry point.
"""

__version__ = "0.1.0"

from snntrain.rundir import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()  # ${snntrain.stamp:} and ${snntrain.dirname:...} in conf/config.yaml
