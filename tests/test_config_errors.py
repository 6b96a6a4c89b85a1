"""Bad input of every kind gets one line naming the key (or the file), never a traceback or a
silent run; the typed config holds exactly what ``conf/`` says.

Most cases are checked in-process (compose, then ``config.parse`` / ``config.validate`` /
the arrays loader); four run ``python -m snntrain`` as a user does.
"""

import dataclasses
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from _workers import cli, python
from conftest import compose

from snntrain import config, data
from snntrain.config import ConfigError
from snntrain.paths import CONFIG_DIR


def _compose(*overrides: str):
    return compose("logger=none", *overrides, tiny=False)


# ---- caught by config.parse, before JAX is imported -------------------------------------
# (overrides, what the one line must contain)
PARSE_CASES = [
    # optax's own parameters: a traceback inside optax's first update, or a silent run
    ("+optimizer.b1=abc", "optimizer.b1='abc' is invalid: must be a finite number >= 0.0 and "
                          "< 1.0"),
    ("+optimizer.b1=2", "optimizer.b1=2 is invalid: must be a finite number >= 0.0 and < 1.0"),
    ("+optimizer.eps=[1,2]", "optimizer.eps=[1, 2] is invalid: must be a finite number >= 0.0"),
    ("optimizer=sgd +optimizer.nesterov=abc", "optimizer.nesterov='abc' is invalid: must be "
                                              "one of true, false"),
    ("+optimizer.b2=nan", "optimizer.b2=nan is invalid: must be a finite number >= 0.0"),
    ("+optimizer.mu_dtype=float64", "optimizer.mu_dtype='float64' is invalid: must be one of "
                                    "null, float32, bfloat16, float16"),
    # finite in float64, inf in float32 (where it is computed): trained, or "diverged"
    ("optimizer.lr=1e39", "optimizer.lr=1e+39 is invalid: must be a finite number (in float32: "
                          "1.175e-38 to 3.403e+38 in size, or 0) > 0.0"),
    ("optimizer.lr=1e-50", "optimizer.lr=1e-50 is invalid: must be a finite number (in float32: "
                           "1.175e-38 to 3.403e+38 in size, or 0) > 0.0"),
    ("seed=-1", "seed=-1 is invalid: must be an integer >= 0"),
    # 2**64 was an OverflowError traceback; 2**32 wrapped onto seed 0's key
    ("seed=4294967296", "seed=4294967296 is invalid: must be an integer >= 0 and < 2147483648"),
    # an int beyond float64 (10**400) raised OverflowError: a traceback; one beyond 2**31
    # trained on (epochs) or failed in the step (T)
    (f"optimizer.lr=1{'0' * 400}", "optimizer.lr=100000000000...(401 digits) is invalid: "
                                   "must be a finite number (in float32: 1.175e-38 to 3.403e+38 "
                                   "in size, or 0) > 0.0"),
    (f"trainer.epochs=1{'0' * 400}", "trainer.epochs=100000000000...(401 digits) is invalid: "
                                     "must be an integer >= 1 and < 2147483648"),
    ("T=2147483648", "T=2147483648 is invalid: must be an integer >= 1 and < 2147483648"),
    # jax.distributed said "list index out of range"; an impossible port trained on
    ("trainer.coordinator_address=nohost", "trainer.coordinator_address='nohost' is invalid: "
                                           "must be host:port (a port from 1 to 65535) or null"),
    ("trainer.coordinator_address=localhost:99999", "trainer.coordinator_address='localhost:"
                                                    "99999' is invalid: must be host:port"),
    ("logger.name=abc", "logger.name='abc' is invalid: must be one of wandb, none"),
    ("logger=wandb logger.group=[1]", "logger.group=[1] is invalid: must be a non-empty string"),
    ("logger=wandb logger.run_name={a:1}", "logger.run_name={'a': 1} is invalid: must be a "),
    ("encoder=latency encoder.threshold=[]", "encoder.threshold=[] is invalid: must be a finite"),
    ("encoder=latency encoder.tau=abc", "encoder.tau='abc' is invalid: must be a finite number"),
    # checked with no axis set too (they were accepted and ignored)
    ("trainer.population.mode=nope", "trainer.population.mode='nope' is invalid: must be one "
                                     "of grid, zip"),
    ("trainer.population.chunk=-5", "trainer.population.chunk=-5 is invalid: must be an integer "
                                    ">= 1, auto or null"),
    # (a scalar mesh was a TypeError warning from Hydra's callback before the error)
    ("trainer.population.mesh=4", "trainer.population.mesh=4 is invalid: must be [members, "
                                  "data] (two integers >= 1) or null"),
    ("trainer.population.vectorize=abc", "trainer.population.vectorize='abc' is invalid"),
    ("T=0", "T=0 is invalid: must be an integer >= 1"),
    ("optimize_metric=nonexistent_key",
     "optimize_metric='nonexistent_key' is invalid: must be one of test_accuracy, "),
    ("+foo=1", "unknown key foo; valid: T, dataset, encoder"),
    ("+sed=1", "unknown key sed (did you mean seed?)"),
    ("trainer.epochs=0", "trainer.epochs=0 is invalid: must be an integer >= 1"),
    ("trainer.batch_size=0", "trainer.batch_size=0 is invalid"),
    ("trainer.log_every=0", "trainer.log_every=0 is invalid"),
    ("trainer.parallel=magic", "trainer.parallel='magic' is invalid: must be one of auto, none"),
    ("trainer.devices=0", "trainer.devices=0 is invalid: must be an integer >= 1, all or null"),
    ("trainer.distributed=maybe", "trainer.distributed='maybe' is invalid: must be one of true"),
    ("trainer.num_processes=0", "trainer.num_processes=0 is invalid"),
    ("trainer.process_id=-1", "trainer.process_id=-1 is invalid"),
    ("trainer.init_timeout_s=0", "trainer.init_timeout_s=0 is invalid"),
    # (a file there was reported as the dataset "not prepared in" it, after the run dir)
    ("dataset=shd dataset.cache_dir=/dev/null", "dataset.cache_dir='/dev/null' is invalid: "
                                                "must be a directory (not a file) or null"),
    ("dataset=mnist dataset.data_dir=/dev/null", "dataset.data_dir='/dev/null' is invalid: "
                                                 "must be a directory (not a file) or null"),
    ("trainer.checkpoint_every=-1", "trainer.checkpoint_every=-1 is invalid"),
    ("trainer.keep_checkpoints=0", "trainer.keep_checkpoints=0 is invalid"),
    ("trainer.async_checkpointing=maybe", "trainer.async_checkpointing='maybe' is invalid"),
    ("trainer.resume=/no/such/dir", "trainer.resume='/no/such/dir' is invalid: must be auto"),
    ("trainer.on_nan=ignore", "trainer.on_nan='ignore' is invalid: must be one of stop"),
    ("trainer.remat=1", "trainer.remat=1 is invalid: must be one of true, false"),
    ("trainer.dtype=float16", "trainer.dtype='float16' is invalid"),
    ("trainer.progress=yes", "trainer.progress='yes' is invalid"),
    ("trainer.fused_epoch=2", "trainer.fused_epoch=2 is invalid"),
    ("+trainer.foo=1", "unknown key trainer.foo; valid: async_checkpointing, batch_size"),
    ("+trainer.epoch=3", "unknown key trainer.epoch (did you mean trainer.epochs?)"),
    ("~trainer.epochs", "trainer.epochs is missing from the config"),
    ("loss.rate_reg.weight=nan", "loss.rate_reg.weight=nan is invalid: must be a finite number"),
    ("loss.rate_reg.weight=-1", "loss.rate_reg.weight=-1 is invalid"),
    ("loss.rate_reg.target=2", "loss.rate_reg.target=2 is invalid"),
    ("+loss.rate_reg.weigth=1", "unknown key loss.rate_reg.weigth (did you mean "
                                "loss.rate_reg.weight?)"),
    ("+model.rate_reg.weight=nan", "model.rate_reg moved to loss.rate_reg: set "
                                   "loss.rate_reg.weight instead"),
    # logger values were not checked: a string tag never reached wandb
    ("logger=wandb logger.tags=foo", "logger.tags='foo' is invalid: must be a list of "
                                     "non-empty strings"),
    ("logger=wandb logger.tags=[a,1]", "logger.tags=['a', 1] is invalid: must be a list of"),
    ("logger=wandb logger.project=''", "logger.project='' is invalid: must be a non-empty"),
    ("logger=wandb logger.project=2026", "logger.project=2026 is invalid: must be a non-empty "
                                         "string (Hydra reads 2026 as a number: quote it, "
                                         "'...=\"2026\"')"),
    ("logger=wandb logger.init_timeout_s=-1", "logger.init_timeout_s=-1 is invalid: must be a "
                                              "finite number"),
    ("optimizer.lr=0", "optimizer.lr=0 is invalid: must be a finite number > 0.0"),
    ("optimizer.lr=abc", "optimizer.lr='abc' is invalid"),
    ("optimizer=adamw optimizer.weight_decay=-1", "optimizer.weight_decay=-1 is invalid"),
    ("optimizer=adamw optimizer.warmup_steps=-5", "optimizer.warmup_steps=-5 is invalid"),
    ("optimizer.warmup_steps=-5", "optimizer.warmup_steps=-5 is invalid"),
    ("optimizer.grad_clip=0", "optimizer.grad_clip=0 is invalid"),
    ("optimizer=sgd optimizer.momentum=1.5", "optimizer.momentum=1.5 is invalid"),
    ("dataset=mnist dataset.n_classes=0", "dataset.n_classes=0 is invalid: must be an integer"),
    # (the event reader said "T='abc' is invalid", not which T)
    ("dataset=shd dataset.T=abc", "dataset.T='abc' is invalid: must be an integer >= 1"),
    ("dataset=nmnist dataset.T=0", "dataset.T=0 is invalid: must be an integer >= 1"),
    ("dataset.val_fraction=1.5", "dataset.val_fraction=1.5 is invalid"),
    # (before: "split fraction must be in [0, 1)" after the run directory existed; 0 a KeyError)
    ("dataset.test_fraction=1.5", "dataset.test_fraction=1.5 is invalid: must be a finite "
                                  "number >= 0.0 and <= 0.99"),
    ("dataset.test_fraction=-0.1", "dataset.test_fraction=-0.1 is invalid"),
    # refused before the run directory exists where the test split is carved (digits)
    ("dataset.test_fraction=0", "dataset.test_fraction=0 is invalid: must be a finite number > "
                                "0.0 and <= 0.99 where the test split is carved from the data"),
    ("dataset=mnist dataset.download=maybe", "dataset.download='maybe' is invalid"),
    ("dataset=mnist dataset.in_memory=sometimes", "dataset.in_memory='sometimes' is invalid"),
    ("dataset=arrays", "dataset.path is required: set dataset.path="),
    ("logger=wandb logger.mode=loud", "logger.mode='loud' is invalid: must be one of auto"),
    ("logger=wandb +logger.projekt=x", "unknown key logger.projekt (did you mean "
                                       "logger.project?)"),
    ("+logger.entiti=x", "unknown key logger.entiti (did you mean logger.entity?)"),
    ("surrogate.name=7", "surrogate.name=7 is invalid"),
    ("surrogate.normalize=maybe", "surrogate.normalize='maybe' is invalid: must be one of true"),
    ("trainer.init_from=/no/such/net.nir", "trainer.init_from='/no/such/net.nir' is invalid: "
                                           "must be null or an existing .nir file"),
    ("+metrics.foo=1", "unknown key metrics.foo; valid: energy, synops"),
    ("+metrics.energy.acpj=1", "unknown key metrics.energy.acpj (did you mean "
                               "metrics.energy.ac_pj?)"),
    ("metrics.synops=maybe", "metrics.synops='maybe' is invalid"),
]

# ---- caught by config.check_groups (the registries: JAX, but no data and no compile) ---------
GROUP_CASES = [
    # (found after binning both splits, a failed run directory left behind: config tester)
    ("dataset=shd dataset.T=8 T=4", "dataset.T=8 and T=4 differ: the events are binned into "
                                    "dataset.T steps and encoder none feeds them as they are"),
    # a tau whose decay underflows blamed the config's beta, which tau replaces
    ("model.neuron.tau=1e-30", "model.neuron.tau=1e-30 is invalid: LIF: tau=1e-30 with dt=1.0 "
                               "gives beta = exp(-dt/tau) = 0 (below the smallest float): tau "
                               "must be more than dt/745"),
    ("model/neuron=alif model.neuron.tau_a=1e-30", "model.neuron.tau_a=1e-30 is invalid: ALIF: "
                                                   "tau_a=1e-30 with dt=1.0 gives rho"),
    # event-data settings were checked only while loading the data: behind "not found" when
    # it was missing, and after the run directory was made when it was there
    ("dataset=shd dataset.binary=no", "dataset.binary='no' is not a boolean; valid: true, false"),
    ("dataset=shd dataset.augment.channel_shift=1.5", "dataset.augment.channel_shift=1.5 is "
                                                      "invalid: must be an integer >= 0"),
    ("dataset=nmnist dataset.origin=bogus", "dataset.origin='bogus' is invalid: must be one of "
                                            "first, zero"),
    ("dataset=dvs_gesture dataset.dt_ms=-1", "dataset.dt_ms=-1 is invalid: must be > 0 or null"),
    ("dataset=shd dataset.cache=maybe", "dataset.cache='maybe' is not a boolean"),
    # refused when the data was read, after the run directory existed
    ("dataset=events dataset.path=x.npz dataset.time_unit=ns", "dataset.time_unit='ns' is "
                                                               "invalid: must be one of us, ms, s"),
    ("dataset=shd dataset.downsample=0", "dataset.downsample=0 is invalid: must be a target "
                                         "size >= 1 or [H, W]"),
    ("dataset=nmnist dataset.downsample=[0,4]", "dataset.downsample=[0, 4] is invalid"),
    ("dataset=shd model=conv", "model=conv needs H x W x C images, but dataset=shd gives a 1-D "
                               "vector of 700 channels per step; use model=mlp or "
                               "model=recurrent"),
    ("dataset=shd dataset.augment=0", "dataset.augment=0 is invalid: must be null or a mapping "
                                      "of channel_shift, drop, jitter_ms, time_shift_ms"),
    # weight decay under adam or sgd was accepted and silently not applied
    ("+optimizer.weight_decay=0.5", "optimizer.weight_decay=0.5 is decoupled weight decay, "
                                    "which only optimizer=adamw applies; optimizer=adam would "
                                    "ignore it: use optimizer=adamw, or drop the key"),
    ("optimizer=sgd +optimizer.weight_decay=0.5", "optimizer.weight_decay=0.5 is decoupled "
                                                  "weight decay, which only optimizer=adamw"),
    ("surrogate.alpha=0", "surrogate.alpha=0 is invalid: FastSigmoid: alpha must be finite"),
    # (it said "set its keys (metrics.energy.name=...)", a key it does not have)
    ("metrics.energy=3", "metrics.energy=3 is invalid: metrics.energy is a config node, not a "
                         "value; set its keys (metrics.energy.ac_pj=..., metrics.energy.mac_pj"
                         "=..., metrics.energy.update_pj=...)"),
    ("surrogate.alpha=1e39", "surrogate.alpha=1e+39 is invalid: FastSigmoid: alpha must be "
                             "finite and > 0 in float32, got 1e+39"),
    (f"surrogate.alpha=1{'0' * 400}", "surrogate.alpha=100000000000...(401 digits) is invalid: "
                                      "FastSigmoid: alpha must be finite and > 0 in float32, "
                                      "got 100000000000...(401 digits)"),
    (f"metrics.energy.ac_pj=1{'0' * 400}", "metrics.energy.ac_pj=1000"),
    (f"dataset=shd dataset.dt_ms=1{'0' * 400}", "dataset.dt_ms=1000"),
    (f"dataset=shd dataset.augment.jitter_ms=1{'0' * 400}", "dataset.augment.jitter_ms=1000"),
    (f"model.hidden=[1{'0' * 400}]", "model.hidden must be a non-empty list of sizes >= 1 and "
                                     "<= 2147483647, got [100000000000...(401 digits)]"),
    ("+surrogate.gamma=2", "unknown key surrogate.gamma; valid: alpha"),
    ("surrogate.name=nope", "unknown surrogate 'nope'; valid: arctan, "),
    ("encoder.gain=-1", "encoder.gain=-1 is invalid: rate encoder: gain must be finite and > 0"),
    ("encoder.gain=abc", "encoder.gain='abc' is invalid"),
    ("encoder.resolution=3", "encoder.resolution=3 is invalid"),
    ("+encoder.gian=2", "unknown key encoder.gian (did you mean encoder.gain?)"),
    ("encoder=latency encoder.mode=cubic", "encoder.mode='cubic' is invalid"),
    ("encoder=latency encoder.threshold=1.5", "encoder.threshold=1.5 is invalid"),
    # the bad value is named, not the valid mode=log
    ("encoder=latency encoder.mode=log encoder.threshold=0", "encoder.threshold=0 is invalid: "
     "latency: threshold must be > 0 with mode=log, got threshold=0"),
    ("encoder.name=morse", "unknown encoder 'morse'; valid: direct, latency, "),
    ("model.hidden=[]", "model.hidden must be a non-empty list of sizes >= 1, got []"),
    ("model.hidden=[a]", "model.hidden=['a'] is invalid"),
    ("model.readout=foo", "model.readout='foo' is invalid: unknown readout 'foo'; valid: "),
    ("model.readout_beta=2", "model.readout_beta=2 is invalid: readout_beta must be in (0, 1]"),
    ("model.remat_chunk=-1", "model.remat_chunk=-1 is invalid: must be an integer >= 0"),
    ("+model.hiden=[3]", "unknown key model.hiden (did you mean model.hidden?)"),
    ("model.learn_beta=true model.neuron.beta=1.0", "model.learn_beta=true is invalid"),
    ("model=conv model.norm=batch", "model.norm must be one of"),
    ("model=conv model.kernel_size=[3]", "model.kernel_size must be an integer >= 1 or a list"),
    ("model=conv model.channels=[0]", "model.channels=[0] is invalid: must be a list of "
                                      "integers >= 1"),
    # coerced without a word: bool('maybe') learned beta, int(1.5) built 1-neuron layers
    ("model.learn_beta=maybe", "model.learn_beta='maybe' is invalid: must be one of true"),
    ("model.learn_threshold=1", "model.learn_threshold=1 is invalid: must be one of true"),
    ("model=conv model.pool_before_neuron=maybe", "model.pool_before_neuron='maybe' is"),
    ("model.neuron.detach_reset=yes", "model.neuron.detach_reset='yes' is invalid"),
    ("model.hidden=[1.5]", "model.hidden=[1.5] is invalid: must be a list of integers >= 1"),
    ("model.hidden=5", "model.hidden=5 is invalid: must be a list of integers >= 1"),
    ("model=conv model.channels=[1.5,2.7]", "model.channels=[1.5, 2.7] is invalid"),
    ("model=conv model.dense=[1.5]", "model.dense=[1.5] is invalid"),
    ("model=conv model.kernel_size=2.5", "model.kernel_size=2.5 is invalid: must be an "
                                         "integer >= 1 or a list"),
    ("model.remat_chunk=2.5", "model.remat_chunk=2.5 is invalid: must be an integer >= 0"),
    # TypeErrors that named no key
    ("model.readout_beta=abc", "model.readout_beta='abc' is invalid: must be a finite number"),
    ("model.neuron.beta=[0.5,0.6]", "model.neuron.beta=[0.5, 0.6] is invalid: must be a "
                                    "finite number"),
    ("model.neuron.threshold=inf", "model.neuron.threshold=inf is invalid: must be a finite"),
    ("model.neuron.dt=0", "model.neuron.dt=0 is invalid: must be a finite number > 0.0"),
    ("model.readout_scale=0", "model.readout_scale=0 is invalid: must be a finite number > 0"),
    ("encoder.gain=[1]", "encoder.gain=[1] is invalid: must be a finite number"),
    # a JAX traceback and a failed run directory (the class lets placeholders through)
    ("surrogate.alpha=[1,2]", "surrogate.alpha=[1, 2] is invalid: fast_sigmoid: alpha must be "
                              "a number, got [1, 2]"),
    ("surrogate=sigmoid surrogate.alpha=null", "surrogate.alpha=null is invalid: sigmoid: alpha "
                                               "must be a number, got None"),
    ("model=conv model.conv_method=fft", "model.conv_method must be one of"),
    ("model=conv model.padding=FULL", "model.padding"),
    ("model=recurrent +model.channels=[3]", "unknown key model.channels"),
    ("model.name=cnn", "unknown model 'cnn'; valid: conv, mlp, recurrent"),
    ("model.neuron.beta=1.5", "model.neuron.beta=1.5 is invalid: LIF: beta must be in (0, 1]"),
    # null is for a tau that sets it (it was refused with tau too)
    ("model.neuron.beta=null", "model.neuron.beta=null is invalid: LIF: beta must be a number "
                               "in (0, 1] unless tau is set, got None"),
    ("model.neuron.threshold=0", "model.neuron.threshold=0 is invalid"),
    ("model.neuron.reset=foo", "model.neuron.reset='foo' is invalid"),
    ("model.neuron.tau=-1", "model.neuron.tau=-1 is invalid"),
    ("+model.neuron.thresold=1", "unknown key model.neuron.thresold (did you mean "
                                 "model.neuron.threshold?)"),
    ("model/neuron=alif model.neuron.b=-1", "model.neuron.b=-1 is invalid: ALIF: b must be"),
    ("model/neuron=alif model.neuron.rho=2", "model.neuron.rho=2 is invalid"),
    ("model/neuron=alif model.neuron.tau_a=-1", "model.neuron.tau_a=-1 is invalid: ALIF: tau_a "
                                                "and dt must be > 0"),  # blamed tau=null
    ("model/neuron=if model.neuron.threshold=-1", "model.neuron.threshold=-1 is invalid"),
    ("model/neuron=if model.learn_beta=true", "model.learn_beta=true is invalid: the IF neuron "
                                              "has no beta to learn"),
    ("model.neuron.name=izh", "unknown neuron 'izh'; valid: alif, if, lif"),
    ("+dataset.foo=1", "unknown key dataset.foo; valid: test_fraction, val_fraction"),
    ("dataset=mnist +dataset.tfds_nme=x", "unknown key dataset.tfds_nme (did you mean "
                                          "dataset.tfds_name?)"),
    ("dataset.name=imagenet", "unknown dataset 'imagenet'; valid: arrays, "),
    ("optimizer.name=rmsprop", "unknown optimizer 'rmsprop'; valid: adam, adamw, sgd"),
    ("optimizer.schedule=linear", "optimizer.schedule 'linear'; valid: constant, cosine"),
    ("+optimizer.bb1=0.9", "unknown key optimizer.bb1 (did you mean optimizer.b1?)"),
    ("optimizer=sgd +optimizer.b1=0.9", "unknown key optimizer.b1"),
    ("metrics.energy.ac_pj=-1", "metrics.energy.ac_pj=-1"),
    ("+model.neuron.kind=lif", "model.neuron.kind was renamed to model.neuron.name"),
    # refused when the data was loaded, after the run directory existed
    ("encoder=none", "encoder=none passes samples through as spikes over T=25 steps, but "
                     "dataset=digits holds images; use encoder=rate, latency or direct"),
    ("dataset=mnist encoder=none", "but dataset=mnist holds images"),
    ("dataset=shd encoder=rate", "encoder=rate cannot encode dataset=shd: its samples are "
                                 "spikes binned into T steps already; use encoder=none"),
    ("dataset=events dataset.path=x.h5 encoder=latency", "encoder=latency cannot encode "
                                                         "dataset=events"),
]


def _one_line(msg: str, expected: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert expected in msg, msg


@pytest.mark.parametrize(("overrides", "expected"), PARSE_CASES,
                         ids=[c[0][:80] for c in PARSE_CASES])
def test_parse_rejects_with_one_line_naming_the_key(overrides, expected):
    with pytest.raises(ConfigError) as err:
        config.parse(_compose(*overrides.split()))
    _one_line(str(err.value), expected)


@pytest.mark.parametrize(("overrides", "expected"), GROUP_CASES,
                         ids=[c[0][:80] for c in GROUP_CASES])
def test_groups_reject_with_one_line_naming_the_key(overrides, expected):
    cfg = _compose(*overrides.split())
    with pytest.raises(ConfigError) as err:
        config.validate(cfg)
    _one_line(str(err.value), expected)


def test_an_integers_upper_bound_is_said_only_to_a_value_above_it():
    rule = config.integer(1)
    assert (rule(0), rule(1), rule(2**31 - 1)) == ("an integer >= 1", None, None)
    assert rule(2**31) == "an integer >= 1 and < 2147483648"
    assert config.integer(0, 10)(10) == "an integer >= 0 and < 10"


TRAINER_CASES = [
    # values asking for several processes were ignored without a word (one process trained)
    ("trainer.num_processes=2", "trainer.num_processes=2 asks for a multi-process run, and "
                                "this one has one process: set trainer.distributed=true (auto "
                                "finds several only under SLURM"),
    ("trainer.distributed=auto trainer.process_id=1",
     "trainer.process_id=1 asks for a multi-process run"),
    ("trainer.distributed=true trainer.num_processes=2 trainer.process_id=2",
     "trainer.process_id=2 is invalid: must be an integer from 0 to 1 "
     "(trainer.num_processes=2)"),
]


@pytest.mark.parametrize(("overrides", "expected"), TRAINER_CASES,
                         ids=[c[0] for c in TRAINER_CASES])
def test_trainer_values_for_several_processes_are_refused_for_a_new_run(overrides, expected,
                                                                          monkeypatch):
    """... by check_trainer (start-up and build), not by parse: a finished run's config.yaml
    that holds them (written before the check) still loads."""
    for var in ("SLURM_NTASKS", "TPU_WORKER_HOSTNAMES", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    run = config.parse(_compose(*overrides.split()))
    with pytest.raises(ConfigError) as err:
        config.check_trainer(run.trainer)
    _one_line(str(err.value), expected)


def test_trainer_values_one_process_or_a_multirun_may_hold_pass(monkeypatch, caplog):
    """One process's own values (num_processes=1, process_id=0: a SLURM script's one task),
    auto under SLURM, and values that only go unused (a multirun may sweep their partner:
    -m trainer.init_from=null,<graph> with one init_from_dt) get a note, not a refusal."""
    import logging

    for var in ("SLURM_NTASKS", "TPU_WORKER_HOSTNAMES", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(var, raising=False)

    def check(*overrides):
        config.check_trainer(config.parse(_compose(*overrides)).trainer)

    with caplog.at_level(logging.INFO, logger="snntrain"):
        check("trainer.distributed=auto", "trainer.num_processes=1", "trainer.process_id=0")
        check("trainer.init_from_dt=1e-4")
        check("trainer.coordinator_address=h:1")
    assert caplog.messages == [
        "note: trainer.init_from_dt=0.0001 has no effect without trainer.init_from (the graph "
        "it is the dt of)",
        "note: trainer.coordinator_address='h:1' has no effect in a one-process run "
        "(trainer.distributed)"]
    monkeypatch.setenv("SLURM_NTASKS", "2")  # (auto: a multi-process run under SLURM)
    check("trainer.distributed=auto", "trainer.num_processes=2")


def test_a_data_dir_is_any_existing_directory_or_none(tmp_path, monkeypatch, capsys):
    """Refused only where a file is: a directory named by a number (Hydra gives an int), a
    path object and "" (the loaders' null) were refused as files."""
    rule = config.GROUP_RULES["dataset.data_dir"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2024").mkdir()
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    for ok in (None, "", 2024, tmp_path, str(tmp_path / "not_yet"), "~/2024"):
        assert rule(ok) is None, ok
    for bad in ("a_file", "~/a_file", tmp_path / "a_file"):
        assert rule(bad) == "a directory (not a file) or null", bad
    assert rule([1]) == "a directory or null"
    # the command line's own check, with ~ expanded as the loader does
    assert data.main(["prepare", "mnist", "--data_dir", "~/a_file"]) == 2
    assert capsys.readouterr().err == ("snntrain.data: error: --data_dir ~/a_file is a file, "
                                       "not a directory\n")


def test_a_finished_run_with_keys_now_refused_at_start_up_still_loads(tmp_path):
    """check_trainer is not in parse: a run written with trainer.num_processes=2 beside
    distributed=false (refused for new runs since) loads and exports as before."""
    from conftest import compose as tiny_compose

    from snntrain import train

    train.train_and_evaluate(tiny_compose("trainer.epochs=1"), tmp_path)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["trainer"]["num_processes"] = 2
    cfg["trainer"]["init_from_dt"] = 1e-4
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert train.params_of(tmp_path) is not None


def test_values_this_configuration_does_not_use_are_noted(monkeypatch):
    """Each trained bit for bit as without it, without a word (tester); said only for values
    given on the command line (the config files hold every key of a group)."""
    def notes(*overrides, shape=(8, 8, 1)):
        monkeypatch.setattr("sys.argv", ["snntrain", *overrides])
        monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
        return config.unused_values(config.parse(_compose(*overrides)), shape)

    assert notes("model.readout_scale=100") == [
        "note: model.readout_scale=100 has no effect with model.readout=membrane_mean (it "
        "scales model.readout=spike_count's counts)"]
    assert notes("model.readout=spike_count", "model.readout_beta=0.3") == [
        "note: model.readout_beta=0.3 has no effect with model.readout=spike_count (it is the "
        "decay of the membrane readouts)"]
    assert notes("encoder=latency", "encoder.tau=0.5") == [
        "note: encoder.tau=0.5 has no effect with encoder.mode=linear (it is the time constant "
        "of encoder.mode=log)"]
    assert notes("model.remat_chunk=1")[0].startswith("note: model.remat_chunk=1 has no effect "
                                                      "with trainer.remat=false")
    assert notes("dataset=events", "dataset.path=x.npz", "dataset.polarity=false",
                 shape=(16,)) == ["note: dataset.polarity=false has no effect with "
                                  "dataset=events's sensor of channels (it sums a camera's "
                                  "polarities)"]
    # accepted, recorded, without effect or word (configuration tester)
    assert notes("optimizer=sgd", "+optimizer.nesterov=true") == [
        "note: optimizer.nesterov=true has no effect with optimizer.momentum=None (optax's sgd "
        "applies Nesterov's correction to its momentum)"]
    assert notes("model.neuron.reset=none", "model.neuron.detach_reset=true") == [
        "note: model.neuron.detach_reset=true has no effect with model.neuron.reset=none "
        "(there is no reset term to detach)"]
    assert notes("loss.rate_reg.target=0.3") == [
        "note: loss.rate_reg.target=0.3 has no effect with loss.rate_reg.weight=0 (it is the "
        "firing rate the regularizer pulls toward)"]
    assert notes("metrics.synops=false", "metrics.energy.ac_pj=2") == [
        "note: metrics.energy.ac_pj=2 has no effect with metrics.synops=false (the energy is "
        "estimated from the synaptic operations)"]
    assert notes("model=conv", "model.channels=[4]", "model.pool=1", "model.pool_mode=avg") == [
        "note: model.pool_mode='avg' has no effect with model.pool=1 (no layer pools)"]
    # used, or not given: nothing to say
    assert notes("optimizer=sgd", "optimizer.momentum=0.9", "+optimizer.nesterov=true") == []
    assert notes("loss.rate_reg.weight=1", "loss.rate_reg.target=0.3") == []
    assert notes("model=conv", "model.pool_mode=avg") == []
    assert notes("model.readout=spike_count", "model.readout_scale=2") == []
    assert notes("encoder=latency", "encoder.mode=log", "encoder.tau=0.5") == []
    assert notes("trainer.remat=true", "model.remat_chunk=5") == []
    assert notes("model.readout=spike_count") == []
    assert notes("dataset=events", "dataset.path=x.npz", "dataset.polarity=false",
                 shape=(8, 8, 2)) == []


def test_every_error_line_shortens_a_huge_number(capsys):
    """The builders' own messages (``rate encoder: resolution must be 8 or 32, got <401
    digits>``) and Hydra's printed the value in full: every line is shortened where printed."""
    from snntrain import startup

    with pytest.raises(SystemExit) as e:
        startup.fail(f"encoder.resolution={10**400} is invalid: ..., got {10**400}")
    assert e.value.code == 2
    assert capsys.readouterr().err == ("snntrain: error: encoder.resolution=100000000000...(401 "
                                       "digits) is invalid: ..., got 100000000000...(401 digits)\n")


@pytest.mark.slow
def test_a_beta_of_null_under_tau_is_valid():
    """lif.yaml: tau, when set, overrides beta; beta=null beside it was refused."""
    import math

    from snntrain import models

    for neuron in ("lif", "alif"):
        cfg = _compose(f"model/neuron={neuron}", "model.neuron.beta=null", "model.neuron.tau=10")
        config.validate(cfg)
        cell = models.make_neuron(dict(cfg.model.neuron))
        assert cell.decay == math.exp(-1 / 10)


def test_another_name_on_the_command_line_keeps_no_other_configs_value(monkeypatch):
    """surrogate.name=sigmoid trained Sigmoid(alpha=25.0) (fast_sigmoid's alpha; sigmoid's is
    4) and optimizer.name=sgd adam's lr 0.002 (sgd's is 0.1), without a word."""
    def check(*overrides):
        monkeypatch.setattr("sys.argv", ["snntrain", *overrides])
        monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
        return config.validate(_compose(*overrides))

    with pytest.raises(ConfigError) as err:
        check("surrogate.name=sigmoid")
    assert str(err.value) == (
        "surrogate.alpha=25.0 is not surrogate=sigmoid's value (4.0): it was kept from "
        "surrogate=fast_sigmoid, chosen before surrogate.name=sigmoid (to switch "
        "surrogate.name, pick the config with surrogate=sigmoid: it brings that surrogate's "
        "parameters, or set surrogate.alpha too)")
    with pytest.raises(ConfigError, match=r"^optimizer.lr=0.002 is not optimizer=sgd's value "
                       r"\(0.1\): it was kept"):
        check("optimizer.name=sgd")
    # what the user set, or the values the named config has anyway, pass
    assert check("surrogate.name=sigmoid", "surrogate.alpha=25").surrogate["alpha"] == 25
    assert check("surrogate=sigmoid", "surrogate.name=sigmoid").surrogate["alpha"] == 4.0
    assert check("surrogate.name=fast_sigmoid").surrogate["alpha"] == 25.0
    assert check("optimizer=sgd", "optimizer.name=sgd").optimizer["lr"] == 0.1
    # no leftover (false refusals of the first version): an experiment's own values, no
    # switch at all (conv_vgg's name is conv), a value the config chosen before did not set
    assert check("experiment=shd_recurrent", "model.neuron.name=lif", "optimizer.name=adam",
                 "dataset.data_dir=/nowhere").optimizer["lr"] == 2e-4
    assert check("model=conv_vgg", "model.name=conv").model["channels"][0] == 32
    assert check("surrogate.name=sigmoid", "surrogate.alpha=4").surrogate["alpha"] == 4


def test_values_the_run_would_replace_or_leave_unrecorded_are_refused(monkeypatch):
    """Each trained without a word (tester): a beta beside the tau that sets it (a multirun
    over beta trained one network), a switched name that left out the new config's keys (ALIF's
    rho and b were the code's defaults, unrecorded in config.yaml), a deleted neuron."""
    def check(*overrides):
        monkeypatch.setattr("sys.argv", ["snntrain", *overrides])
        monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
        return config.validate(_compose(*overrides))

    with pytest.raises(ConfigError) as err:
        check("model.neuron.tau=5", "model.neuron.beta=0.5")
    assert str(err.value) == ("model.neuron.beta=0.5 has no effect: model.neuron.tau=5 sets "
                              "beta = exp(-dt/tau); give one of them (model.neuron.tau=null to "
                              "use beta)")
    with pytest.raises(ConfigError, match=r"^model.neuron.rho=0.1 has no effect: model.neuron"
                                          r".tau_a=5 sets rho = exp\(-dt/tau_a\)"):
        check("model/neuron=alif", "model.neuron.tau_a=5", "model.neuron.rho=0.1")
    with pytest.raises(ConfigError) as err:
        check("model.neuron.name=alif")
    assert str(err.value) == (
        "model.neuron.name=alif leaves out model/neuron=alif's rho, tau_a, b (the code's "
        "defaults would run, unrecorded in config.yaml): to switch model.neuron.name, pick the "
        "config with model/neuron=alif: it brings that neuron's parameters")
    with pytest.raises(ConfigError, match=r"^encoder.name=rate leaves out encoder=rate's gain, "
                                          r"resolution, generator"):
        check("encoder=direct", "encoder.name=rate")
    for deleted in ("~model.neuron", "model.neuron=null"):
        with pytest.raises(ConfigError) as err:
            check(deleted)
        assert str(err.value) == ("model.neuron is deleted: the code's default neuron would run, "
                                  "unrecorded in config.yaml; pick one with model/neuron=<name> "
                                  "(alif, if, lif)")
    # in a multirun's job a note (-m model.neuron.tau=null,20 model.neuron.beta=0.8: the beta
    # is the other job's); the sweep's start refuses a swept beta (swept: named as written)
    monkeypatch.setattr(config, "_in_multirun_job", lambda: True)
    check("model.neuron.tau=5", "model.neuron.beta=0.5")
    with pytest.raises(ConfigError, match=r"^model.neuron.beta=0.5,0.9 has no effect"):
        config.no_overridden_decay({"beta": 0.9, "tau": 5}, {
            "model.neuron.beta": ("model.neuron.beta=0.5,0.9", None)})
    monkeypatch.setattr(config, "_in_multirun_job", lambda: False)
    # tau alone (beta from the config), tau with beta=null, and beta alone pass
    assert check("model.neuron.tau=5").model["neuron"]["tau"] == 5
    assert check("model.neuron.tau=5", "model.neuron.beta=null").model["neuron"]["beta"] is None
    assert check("model.neuron.beta=0.5").model["neuron"]["beta"] == 0.5


def test_deleting_a_groups_value_is_refused(monkeypatch):
    """~model.neuron.beta ran with the code's default beta, which config.yaml did not record."""
    for key, has in (("model.neuron.beta", "model/neuron=lif has 0.9"),
                     ("surrogate.alpha", "surrogate=fast_sigmoid has 25.0"),
                     ("optimizer.lr", "optimizer=adam has 0.002")):
        monkeypatch.setattr("sys.argv", ["snntrain", f"~{key}"])
        monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
        with pytest.raises(ConfigError) as err:
            config.validate(_compose(f"~{key}"))
        assert str(err.value) == (
            f"~{key} deletes a value the run needs (the code's default would run, unrecorded "
            f"in config.yaml): set {key}=<value> instead ({has})")


def test_another_neuron_name_on_the_command_line_points_to_its_config(monkeypatch):
    """model.neuron.name=if kept the lif's beta and blamed it ("unknown key model.neuron.beta");
    the line now says to pick the neuron with model/neuron=if. Only when the command line set
    the name: an unknown key of its own gets no such advice."""
    cfg = _compose("model.neuron.name=if")
    monkeypatch.setattr("sys.argv", ["snntrain", "model.neuron.name=if"])
    monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
    with pytest.raises(ConfigError) as err:
        config.validate(cfg)
    assert str(err.value) == (
        "unknown key model.neuron.beta; valid: detach_reset, reset, threshold (to switch "
        "model.neuron.name, pick the config with model/neuron=if: it brings that neuron's "
        "parameters)")
    monkeypatch.setattr("sys.argv", ["snntrain", "+model.neuron.foo=1"])
    monkeypatch.setattr("snntrain.config.FROM_COMMAND_LINE", True)
    with pytest.raises(ConfigError) as err:
        config.validate(_compose("+model.neuron.foo=1"))
    assert str(err.value) == ("unknown key model.neuron.foo; valid: beta, detach_reset, dt, "
                              "reset, tau, threshold")


@pytest.mark.slow
def test_every_shipped_group_config_passes():
    """No false alarms: every shipped choice of every group validates."""
    for group in ("surrogate", "model", "encoder", "optimizer", "logger", "dataset"):
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            shipped = yaml.safe_load(path.read_text())
            required = [f"{group}.{k}=x" for k, v in shipped.items() if v == "???"]
            if (group, path.stem) == ("encoder", "none"):  # (for data that is spikes already)
                required.append("dataset=shd")
            run = config.validate(_compose(f"{group}={path.stem}", *required))
            assert getattr(run, group)["name"] == shipped.get("name", "conv")  # conv_vgg: conv's
    for path in sorted((CONFIG_DIR / "model" / "neuron").glob("*.yaml")):
        config.validate(_compose(f"model/neuron={path.stem}"))
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        config.validate(_compose(f"experiment={path.stem}"))


def test_moved_key_on_the_command_line_is_named():
    # Hydra alone would say "Key 'rate_reg' is not in struct"; main() says where it went.
    err = config.moved_in_overrides(["logger=none", "model.rate_reg.weight=0.1"])
    assert str(err) == "model.rate_reg moved to loss.rate_reg: set loss.rate_reg.weight instead"
    assert str(config.moved_in_overrides(["+model.rate_reg={weight:1}"])).startswith(
        "model.rate_reg moved to loss.rate_reg")
    assert config.moved_in_overrides(["model.readout=spike_count", "-m"]) is None
    # the node itself: its keys take the values (it said "set loss.rate_reg", also refused)
    assert str(config.moved_in_overrides(["model.rate_reg=0.1"])) == (
        "model.rate_reg moved to loss.rate_reg: set loss.rate_reg.<key> (loss.rate_reg.weight, "
        "loss.rate_reg.target) instead")


def test_a_config_node_set_to_a_value_is_named():
    """``model.neuron=alif`` (for ``model/neuron=alif``) composed to a string, and the check
    died with "AttributeError: 'str' object has no attribute 'items'"."""
    with pytest.raises(ConfigError, match=r"^model.neuron='alif' is invalid: model.neuron is a "
                       r"config node, not a value; choose one with model/neuron=<option> or "
                       r"set its keys \(model.neuron.name=...\)$"):
        config.validate(_compose("model.neuron=alif"))
    with pytest.raises(ConfigError, match=r"^metrics.energy=3 is invalid: metrics.energy is a "
                       r"config node, not a value; set its keys"):
        config.validate(_compose("metrics.energy=3"))


def test_builder_messages_get_the_key_of_the_value_they_reject():
    params = {"beta": 1.5, "tau": None, "readout_beta": 0.9}
    cases = [
        ("model.neuron", ValueError("LIF: beta must be in (0, 1], got 1.5"),
         "model.neuron.beta=1.5 is invalid: LIF: beta must be in (0, 1], got 1.5"),
        ("model", ValueError("readout_beta must be in (0, 1], got 0.9"),
         "model.readout_beta=0.9 is invalid: readout_beta must be in (0, 1], got 0.9"),
        ("model", ValueError("model.hidden must be a non-empty list"),  # names it already
         "model.hidden must be a non-empty list"),
        ("model", TypeError("something else"), "model: something else"),  # no key to name
    ]
    for group, error, expected in cases:
        with pytest.raises(ConfigError) as err, config.named(group, params):
            raise error
        assert str(err.value) == expected


# ---- the typed config ---------------------------------------------------------------------


def test_trainer_config_has_exactly_the_keys_of_the_shipped_yaml():
    shipped = yaml.safe_load((CONFIG_DIR / "trainer" / "default.yaml").read_text())
    run = config.parse(_compose())
    assert dataclasses.asdict(run.trainer) == shipped  # names, values and nothing invented
    loss = yaml.safe_load((CONFIG_DIR / "loss" / "default.yaml").read_text())["rate_reg"]
    assert run.loss == config.LossConfig(loss["weight"], loss["target"])
    root = yaml.safe_load((CONFIG_DIR / "config.yaml").read_text())
    assert (run.seed, run.T, run.optimize_metric) == (
        root["seed"], root["T"], root["optimize_metric"])
    model = yaml.safe_load((CONFIG_DIR / "model" / "mlp.yaml").read_text())
    assert run.model["hidden"] == model["hidden"] and "rate_reg" not in run.model
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.trainer.epochs = 3  # type: ignore[misc]


def test_overrides_arrive_typed():
    run = config.parse(_compose("trainer.epochs=7", "trainer.devices=all", "T=3",
                                "loss.rate_reg.weight=0.5", "trainer.resume=never"))
    assert (run.trainer.epochs, run.trainer.devices, run.T) == (7, "all", 3)
    assert run.loss.rate_reg_weight == 0.5 and run.trainer.resume == "never"


def test_optimize_metric_names_numbers_every_summary_has():
    from test_golden import GOLDEN, TIMING

    summary = json.loads((GOLDEN / "default" / "summary.json").read_text())
    for key in config.SUMMARY_METRICS:
        assert key in TIMING or isinstance(summary[key], (int, float)), key


def test_parse_imports_no_jax_and_validate_starts_no_backend():
    """parse is the fast path (no JAX); validate imports JAX but starts no XLA backend, so
    ``jax.distributed.initialize`` (multi-host runs) can still follow it."""
    code = ("import sys; sys.path.insert(0, 'tests'); from conftest import compose; "
            "from snntrain import config; config.parse(compose()); "
            "print(sorted(m for m in ('jax', 'flax', 'optax') if m in sys.modules)); "
            "config.validate(compose('model=conv', tiny=False)); "
            "from jax._src import xla_bridge; print(xla_bridge.backends_are_initialized())")
    assert python(code).stdout.split("\n")[:2] == ["[]", "False"]


@pytest.mark.slow
def test_rate_reg_is_read_from_loss():
    """The moved key does reach the loss: one SGD step with the regulariser differs."""
    import jax

    from snntrain import data as data_lib
    from snntrain import train

    exp = train.build(compose("optimizer=sgd"))
    batch = next(data_lib.batches(exp.data.train, exp.batch_size))
    params = []
    for weight in (0.0, 10.0):
        cfg = compose("optimizer=sgd", f"loss.rate_reg.weight={weight}")
        reg = train.build(cfg).rate_reg  # what the step reads, built from loss.rate_reg
        step = jax.jit(train.make_train_step(dataclasses.replace(exp, rate_reg=reg)))
        state, _ = step(exp.init_state(), batch, jax.random.PRNGKey(0), exp.surrogate)
        params.append(jax.tree.leaves(state.params))
    assert any(not np.array_equal(a, b) for a, b in zip(*params, strict=True))


# ---- dataset=arrays: damaged files ---------------------------------------------------------


def _arrays(n_train=30, n_test=10, n_classes=4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (n_train, 5, 4)).astype(np.uint8),
            "y_train": rng.integers(0, n_classes, n_train),
            "x_test": rng.integers(0, 256, (n_test, 5, 4)).astype(np.uint8),
            "y_test": rng.integers(0, n_classes, n_test)}


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return path


def _truncated(p: Path) -> Path:
    np.savez(p, **_arrays())
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _bad_crc(p: Path) -> Path:
    np.savez(p, **_arrays())
    raw = bytearray(p.read_bytes())
    info = zipfile.ZipFile(p).getinfo("x_train.npy")
    raw[info.header_offset + 30 + len("x_train.npy") + 200] ^= 0xFF  # a byte of its data
    p.write_bytes(bytes(raw))
    return p


def _not_npy(p: Path) -> Path:
    return _zip(p, {k: b"hello" for k in _arrays()})


def _huge_header(p: Path) -> Path:
    header = io.BytesIO()  # 80000 x 80000000 float32 claimed: 6.4e12 elements, 25.6 TB
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (80000, 80_000_000)})
    members = {f"{k}.npy": _npy(v) for k, v in _arrays().items()}
    members["x_train.npy"] = header.getvalue() + bytes(100)
    return _zip(p, members)


def _huge_labels(p: Path) -> Path:
    arrays = _arrays()
    arrays["y_train"][0] = 10**9
    np.savez(p, **arrays)
    return p


def _label_ids(p: Path) -> Path:
    arrays = _arrays()
    for k in ("y_train", "y_test"):
        arrays[k] = 1000 + arrays[k] % 3
    np.savez(p, **arrays)
    return p


def _objects(p: Path) -> Path:
    arrays = _arrays()
    arrays["y_test"] = np.array([1, "a"] * 5, dtype=object)
    np.savez(p, **arrays)
    return p


def _missing(p: Path) -> Path:
    arrays = _arrays()
    del arrays["y_test"]
    np.savez(p, **arrays)
    return p


ARRAY_CASES = {
    "truncated": (_truncated, "is not a readable .npz file (truncated or not a zip archive"),
    "bad CRC": (_bad_crc, ": member x_train.npy is corrupt (BadZipFile: Bad CRC-32"),
    "members not .npy": (_not_npy, ": member x_train is not a .npy array"),
    "6.4e12 elements": (_huge_header, ": member x_train.npy claims shape (80000, 80000000) of "
                                      "float32 (25,600,000,000,000 bytes) but holds 100 bytes"),
    "labels up to 1e9": (_huge_labels, ": labels span 0..1000000000 but only 5 distinct values"),
    # ids 1000..1002 were said to span 0..1002
    "label ids": (_label_ids, ": labels span 1000..1002 but only 3 distinct values occur"),
    "object array": (_objects, ": member y_test.npy holds Python objects (samples of "
                               "different shapes?), which are not read (pickle); pad or crop"),
    "missing member": (_missing, " is missing y_test; it has x_train, y_train, x_test"),
}


@pytest.mark.parametrize("case", list(ARRAY_CASES))
def test_damaged_npz_gives_one_line_naming_file_and_member(tmp_path, case):
    make, expected = ARRAY_CASES[case]
    path = str(make(tmp_path / "mine.npz"))
    with pytest.raises(data.BadArrays) as err:
        data.load("arrays", path=path)
    _one_line(str(err.value), expected)
    assert str(err.value).startswith(path)


@pytest.mark.parametrize("case", ["truncated", "missing member"])
def test_an_arrays_file_that_is_no_npz_of_the_four_arrays_is_refused_before_the_run_dir(
        tmp_path, case):
    """Before: the run directory was made (``.hydra/``, a failed ``summary.json``) and then
    the file was found to be no ``.npz`` of ``x_train, y_train, x_test, y_test``; its zip
    directory is now read at start-up, and so are its members."""
    make, expected = ARRAY_CASES[case]
    path = make(tmp_path / "mine.npz")
    with pytest.raises(ConfigError) as err:
        config.check_files(config.parse(compose("dataset=arrays", f"dataset.path={path}")))
    _one_line(str(err.value), expected)
    with pytest.raises(ConfigError, match="member x_train.npy is corrupt"):  # (read too)
        config.check_files(config.parse(compose(
            "dataset=arrays", f"dataset.path={_bad_crc(tmp_path / 'crc.npz')}")))
    run_dir = tmp_path / "run"
    p = cli("logger=none", "dataset=arrays", f"dataset.path={path}", f"hydra.run.dir={run_dir}",
            cwd=tmp_path)
    assert p.returncode == 2 and expected in _last_line(p) and not run_dir.exists()



def _short_labels(p: Path) -> Path:
    arrays = _arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    np.savez(p, **arrays)
    return p


def _pixels_to_510(p: Path) -> Path:
    arrays = _arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32) * 2  # 0..510: not [0, 1]
    arrays["x_test"] = arrays["x_test"].astype(np.float32) / 255
    np.savez(p, **arrays)
    return p


def _float_labels(p: Path) -> Path:
    arrays = _arrays()
    arrays["y_train"] = arrays["y_train"].astype(np.float64)
    np.savez(p, **arrays)
    return p


def _negative_labels(p: Path) -> Path:
    arrays = _arrays()
    arrays["y_train"][3] = -1
    np.savez(p, **arrays)
    return p


READ_ARRAY_CASES = {
    "x and y lengths differ": (_short_labels, ": x_train has 30 images but y_train 29 labels"),
    "float pixels up to 510": (_pixels_to_510, ": x_train values span 0.0..510.0 ("),
    "float labels": (_float_labels, ": y_train has dtype float64; labels must be integers "
                                    "(y.astype(int))"),
    "negative labels": (_negative_labels, " (y_train): labels span -1..3, outside 0..3 "
                                          "(dataset.n_classes=4)"),
}


@pytest.mark.parametrize("case", list(READ_ARRAY_CASES))
def test_an_arrays_file_whose_arrays_are_malformed_is_refused_before_the_run_dir(tmp_path, case):
    """x and y of different lengths, float pixels up to 510, float or negative labels: the
    right line, but after the run directory existed (a failed ``summary.json``)."""
    make, expected = READ_ARRAY_CASES[case]
    path = make(tmp_path / "mine.npz")
    with pytest.raises(data.BadArrays) as err:  # (the loader's own line, word for word)
        data.load("arrays", path=str(path))
    _one_line(str(err.value), f"{path}{expected}")
    with pytest.raises(ConfigError) as err:
        config.check_files(config.parse(compose("dataset=arrays", f"dataset.path={path}")))
    _one_line(str(err.value), f"{path}{expected}")
    if case != "x and y lengths differ":  # (the CLI's start-up is check_files, checked above)
        return
    run_dir = tmp_path / "run"
    p = cli("logger=none", "dataset=arrays", f"dataset.path={path}", f"hydra.run.dir={run_dir}",
            cwd=tmp_path)
    assert p.returncode == 2 and _last_line(p).startswith(f"snntrain: error: {path}{expected}")
    assert not run_dir.exists() and not list(tmp_path.glob("outputs"))


def test_arrays_n_classes_zero_is_not_auto(tmp_path):
    np.savez(tmp_path / "ok.npz", **_arrays())
    with pytest.raises(data.BadArrays, match=r"^dataset\.n_classes=0 is invalid"):
        data.load("arrays", path=str(tmp_path / "ok.npz"), n_classes=0)
    assert data.load("arrays", path=str(tmp_path / "ok.npz")).n_classes == 4


def test_damaged_npz_through_the_trainer_is_a_config_error(tmp_path):
    from snntrain import train

    path = _bad_crc(tmp_path / "mine.npz")
    with pytest.raises(ConfigError) as err:
        train.build(compose("dataset=arrays", f"dataset.path={path}"))
    _one_line(str(err.value), f"{path}: member x_train.npy is corrupt")


# ---- as a user runs it ---------------------------------------------------------------------


def _last_line(p) -> str:
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return p.stderr.strip().splitlines()[-1]


def test_cli_bad_value_fails_before_any_run_directory_exists(tmp_path):
    t0 = time.perf_counter()
    p = cli("logger=none", "+trainer.foo=1", cwd=tmp_path)
    seconds = time.perf_counter() - t0
    print(f"\ntime to error (parse, before the huge-page restart): {seconds:.2f} s")
    assert p.returncode == 2
    assert _last_line(p) == "snntrain: error: unknown key trainer.foo; valid: " + ", ".join(
        sorted(f.name for f in dataclasses.fields(config.TrainerConfig)))
    assert list(tmp_path.iterdir()) == []  # no outputs/, no probe left behind


def test_a_model_that_does_not_fit_the_datas_known_shape_is_refused_before_the_run_dir(
        tmp_path, monkeypatch):
    """A conv kernel larger than a layer's input (digits are 8x8; mnist 28x28, from its
    config: not loaded) and a 2-D events sensor were refused after the run directory existed
    (the model was built for the data)."""
    from snntrain import tfds_data

    def check(*overrides):
        return config.check_files(config.parse(_compose(*overrides)))

    monkeypatch.setattr(tfds_data, "network_problem", lambda: None)  # (mnist: downloadable)
    with pytest.raises(ConfigError) as e:
        check("model=conv", "model.channels=[4,8,8]")
    assert str(e.value) == ("model.kernel_size=5 is too large for conv layer 2's 2x2 input: "
                            "with padding SAME at most 3")
    assert check("model=conv") == (8, 8, 1)
    assert check("dataset=mnist", "model=conv", "model.channels=[4,8,8]") == (28, 28, 1)
    with pytest.raises(ConfigError, match="model.kernel_size=5 is too large for conv layer 4's "
                                          "1x1 input"):
        check("dataset=mnist", "model=conv", "model.channels=[4,8,8,8,8]")
    assert check("dataset=tfds", "dataset.tfds_name=anything", "model=conv") is None
    path = tmp_path / "flat.npz"
    np.savez(path, sensor_size=np.array([34, 34]))
    with pytest.raises(ConfigError, match=rf"^{path}: sensor_size=\[34, 34\] is invalid: must "
                                          r"be \[C\] for \(t, unit\) events or \[W, H, P\]"):
        check("dataset=events", f"dataset.path={path}")
    # (W, H, P), downsampled to H x W (a whole file: one of a sensor alone is refused)
    events = {f"{k}_{s}": np.zeros(2, int) for k in ("t", "x", "y", "p") for s in ("train",
                                                                                    "test")}
    np.savez(path, sensor_size=np.array([34, 20, 2]), **events,
             **{f"counts_{s}": np.array([1, 1]) for s in ("train", "test")},
             **{f"labels_{s}": np.array([0, 1]) for s in ("train", "test")})
    assert check("dataset=events", f"dataset.path={path}", "dataset.downsample=[10,17]",
                 "dataset.polarity=false") == (10, 17, 1)
    p = cli("logger=none", "model=conv", "model.channels=[4,8,8]", cwd=tmp_path)
    assert p.returncode == 2
    assert _last_line(p) == ("snntrain: error: model.kernel_size=5 is too large for conv "
                             "layer 2's 2x2 input: with padding SAME at most 3")
    assert list(tmp_path.iterdir()) == [path]


def test_cli_unresolvable_interpolation_fails_before_any_run_directory_exists(tmp_path):
    """It named the group (trainer) and left a run directory with a failed summary.json."""
    p = cli("logger=none", "trainer.epochs=${oops}", cwd=tmp_path)
    assert p.returncode == 2
    assert _last_line(p) == ("snntrain: error: trainer.epochs: cannot resolve the config "
                             "(Interpolation key 'oops' not found)")
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_group_value_fails_before_data_and_leaves_nothing(tmp_path):
    t0 = time.perf_counter()
    p = cli("logger=none", "model.neuron.beta=1.5", cwd=tmp_path)
    seconds = time.perf_counter() - t0
    print(f"\ntime to error (neuron check: JAX imported, no restart): {seconds:.2f} s")
    assert p.returncode == 2
    assert _last_line(p) == ("snntrain: error: model.neuron.beta=1.5 is invalid: LIF: beta "
                             "must be in (0, 1], got 1.5")
    assert list(tmp_path.iterdir()) == []


def test_cli_unwritable_output_directory_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    p = cli("logger=none", f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert p.returncode == 2
    assert _last_line(p) == (f"snntrain: error: output directory {blocker}/run is not "
                             f"writable: {blocker} is not a directory")
    if os.geteuid() != 0:  # root writes into read-only directories anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        p = cli("logger=none", f"hydra.run.dir={ro}/run", cwd=tmp_path)
        assert p.returncode == 2 and "is not writable: Permission denied" in _last_line(p)
        assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_cli_start_up_failure_after_the_directory_exists_says_why_in_summary(tmp_path):
    path = tmp_path / "mine.npz"  # (30 training samples: found when the splits are made)
    np.savez(path, **_arrays())
    run_dir = tmp_path / "run"
    p = cli("logger=none", "dataset=arrays", f"dataset.path={path}", "dataset.val_fraction=0.99",
            f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert p.returncode == 2
    line = _last_line(p)
    assert line.startswith("snntrain: error: dataset.val_fraction=0.99 of 30 training samples "
                           "leaves no sample to train on"), line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and line[len("snntrain: error: "):] in summary["error"]
    # nothing trained: no metrics, no checkpoints, no config of a started run
    assert not {"metrics.jsonl", "checkpoints", "config.yaml"} & {q.name for q in run_dir.iterdir()}


def test_a_test_fraction_that_holds_no_sample_is_named():
    """dataset.test_fraction=0.0001 of digits' 1797 samples rounds to no test sample (before:
    a KeyError traceback after training)."""
    from snntrain import data
    from snntrain.sources import DatasetError

    with pytest.raises(DatasetError, match=r"^dataset.test_fraction=0.0001 of 1797 samples is "
                       r"no test sample: it must be more than 0.00028$"):
        data.load_digits(test_fraction=1e-4)
    assert len(data.load_digits(test_fraction=3e-4).test) == 1
    # 0 is refused where a test split is carved, and accepted where it is unused (a tfds
    # dataset's own test_split: the config refused it there)
    with pytest.raises(DatasetError, match=r"^dataset.test_fraction=0 of 1797 samples is no "):
        data.load_digits(test_fraction=0)
    config.validate(compose("dataset=tfds", "dataset.tfds_name=mnist", "dataset.test_fraction=0"))


def test_a_split_that_leaves_nothing_to_train_on_is_named():
    """dataset.val_fraction=0.99 of 10 samples left 0 to train on: the run "completed" with 0
    steps and a validation accuracy of the untrained model."""
    from snntrain.sources import DatasetError, carve_test, val_indices

    with pytest.raises(DatasetError, match=r"^dataset.val_fraction=0.99 of 10 training samples "
                       r"leaves no sample to train on: it must be less than 0.95$"):
        val_indices(10, 0.99, seed=0)
    with pytest.raises(DatasetError, match=r"^dataset.test_fraction=0.99 of 40 samples leaves "
                       r"no sample to train on: it must be less than 0.9875$"):
        carve_test(40, 0.99, seed=0)
    assert [len(a) for a in val_indices(10, 0.94, seed=0)] == [1, 9]


def test_a_batch_larger_than_the_training_set(caplog):
    """Padded with a note up to 1024 rows; beyond, refused (batch_size=1e9 on digits was killed
    by the OOM killer without a word, 100000 trained on 99% padding)."""
    import logging

    from snntrain import experiment, train

    with pytest.raises(ConfigError, match=r"^trainer.batch_size=100000 is larger than the 1294 "
                       r"training examples of dataset=digits: use at most 1294$"):
        train.build(_compose("trainer.batch_size=100000"))
    experiment._note.cache_clear()  # (said once per process: maybe by an earlier test)
    with caplog.at_level(logging.INFO, logger="snntrain"):
        experiment._check_batch_fits(64, 11, "shd")
        experiment._check_batch_fits(64, 11, "shd")  # said once
        experiment._check_batch_fits(11, 11, "shd")
    assert caplog.messages == ["note: trainer.batch_size=64 is larger than the 11 training "
                               "examples of dataset=shd: one step per epoch, padded to 64 rows"]


def test_no_validation_split_with_a_validation_metric_is_noted(caplog):
    """dataset.val_fraction=0 with the default optimize_metric=best_val_accuracy completed with
    a null metric and no word (a sweeper got None)."""
    import logging

    from snntrain import experiment, train

    experiment._note.cache_clear()
    with caplog.at_level(logging.INFO, logger="snntrain"):
        train.build(_compose("dataset.val_fraction=0"))
        train.build(_compose("dataset.val_fraction=0", "optimize_metric=test_accuracy"))
    assert caplog.messages == [
        "note: no validation split (dataset.val_fraction=0): optimize_metric="
        "best_val_accuracy will be null, so sweepers and the report cannot select on it"]


def test_checkpoint_every_with_a_fused_epoch_is_noted(caplog):
    """trainer.fused_epoch=true saves at epoch ends only: trainer.checkpoint_every=2 was
    dropped without a word."""
    import logging

    from snntrain import experiment, train

    experiment._note.cache_clear()
    with caplog.at_level(logging.INFO, logger="snntrain"):
        train.build(_compose("trainer.fused_epoch=true", "trainer.checkpoint_every=2"))
        train.build(_compose("trainer.fused_epoch=true"))
        train.build(_compose("trainer.checkpoint_every=2"))
    assert caplog.messages == [
        "note: trainer.checkpoint_every=2 has no effect with trainer.fused_epoch=true (an epoch "
        "is one compiled call): checkpoints are saved at the end of each epoch"]


def test_from_python_the_overrides_get_the_command_lines_checks(tmp_path, monkeypatch):
    """From Python the checks of values a run would replace or ignore read sys.argv: the
    script's own arguments (a script given 'model.neuron.beta=0.5' was refused), never the
    overrides it composed, so model.neuron.beta=0.5 under tau=5 trained with beta =
    exp(-1/5) and config.yaml said 0.5 (configuration tester). train_and_evaluate takes the
    overrides now; a bad cfg or run_dir is one line, and a bad value makes no run directory."""
    from omegaconf import OmegaConf

    from snntrain.errors import ConfigError
    from snntrain.train import train_and_evaluate

    given = ["model.neuron.tau=5", "model.neuron.beta=0.5"]
    with pytest.raises(ConfigError, match=r"^model\.neuron\.beta=0\.5 has no effect: "
                                          r"model\.neuron\.tau=5 sets beta"):
        train_and_evaluate(compose(*given), tmp_path / "a", overrides=given)
    assert not (tmp_path / "a").exists()
    pop = ["surrogate.alpha=3", "trainer.population.surrogate.name=[sigmoid,arctan]"]
    with pytest.raises(ConfigError, match=r"^surrogate\.alpha=3 would be dropped"):
        train_and_evaluate(compose(*pop), tmp_path / "b", overrides=pop)
    assert not (tmp_path / "b").exists()
    # a script's own arguments are not overrides
    monkeypatch.setattr(sys, "argv", ["my_script.py", *given])
    run = compose("model.neuron.tau=5", "trainer.epochs=1", "model.neuron.beta=0.9")
    assert train_and_evaluate(run, tmp_path / "c")["status"] == "completed"
    # a plain dict is a config; other arguments of the wrong kind are one line
    assert train_and_evaluate(OmegaConf.to_container(run), tmp_path / "c")["status"] == (
        "completed")
    for args, message in (((run, 5), "run_dir must be a path, got 5"),
                          (("x", tmp_path), "cfg must be a composed config"),
                          ((run, tmp_path, "seed=1"), "overrides must be a list of strings")):
        with pytest.raises(ConfigError, match=message):
            train_and_evaluate(*args)
    with pytest.raises(ConfigError, match=r"^trainer\.epochs=0 is invalid"):
        train_and_evaluate(compose("trainer.epochs=0"), tmp_path / "d")
    assert not (tmp_path / "d").exists()
