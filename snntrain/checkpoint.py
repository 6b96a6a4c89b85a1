"""Checkpoints with orbax: atomic, asynchronous, pickle-free, and checked before use.

A checkpoint ``<run dir>/checkpoints/<step>/`` holds ``state`` (parameters, optimizer state,
step; orbax's tensorstore format, no pickle) and ``meta`` (JSON: epoch, position in the epoch,
PRNG seed, and a fingerprint of the configuration that decides parameter shapes). Orbax writes
into a temporary directory and renames it when complete, so a crash during a save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from snntrain.errors import Refused
from snntrain.sources import content_hash


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (incompatible, unreadable)."""


class IncompatibleCheckpoint(CheckpointError, Refused):
    """The run directory's checkpoints are from a run with other settings. ``detail``: what
    differs, without the path and the hint (said of a damaged checkpoint set aside)."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


def shapes_of(tree: Any) -> dict[str, list]:
    """``{"path/to/leaf": [shape..., dtype]}`` for a pytree of arrays (the model's signature)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): [*map(int, x.shape), str(x.dtype)] for p, x in flat}


DATA_IDENTITY = "training data (a hash of its examples and labels)"
EVAL_IDENTITY = "val and test data (a hash of their examples and labels)"
# a hash only a source held in memory has (a streamed tfds split has none): compared when
# both the checkpoint and this run have it (dataset.in_memory may change on resume)
DATA_HASHES = frozenset({DATA_IDENTITY, EVAL_IDENTITY})
# fingerprint keys that checkpoints written before them lack (not compared when absent)
FINGERPRINT_ADDED_LATER = frozenset({"surrogate", "T", "neuron", "encoder", "dataset settings",
                                     "model", *DATA_HASHES, "optimizer settings", "loss",
                                     "trainer.dtype", "model input"})
# the config key a fingerprint key stands for, where they differ (the refusal names the key)
CONFIG_KEY = {"dataset settings": "dataset", "neuron": "model.neuron",
              "optimizer settings": "optimizer"}


def describe_difference(saved: dict, current: dict, had: str = "checkpoint has",
                        has: str = "this run has", top: bool = True) -> str:
    """One line naming what differs between two :func:`shapes_of` / fingerprint dicts."""
    # a config's name first: "surrogate.name: ... has fast_sigmoid", not its alpha
    for key in sorted(set(saved) | set(current), key=lambda k: (k != "name", k)):
        a, b = saved.get(key, "<missing>"), current.get(key, "<missing>")
        if a != b and isinstance(a, dict) and isinstance(b, dict):  # model.neuron.beta: ...
            # (the fingerprint's names at the top only: trainer.population.neuron.beta was
            # named trainer.population.model.neuron.beta)
            name = CONFIG_KEY.get(key, key) if top else key
            return f"{name}.{describe_difference(a, b, had, has, top=False)}"
        if a != b:  # (YAML's null: a setting, or a population axis not set)
            return f"{key}: {had} {'null' if a is None else a}, {has} {'null' if b is None else b}"
    return "no difference"


def checkpoints_in(path: Path) -> Path:
    """``trainer.resume=<path>``: a ``checkpoints/`` directory, or a run directory holding
    one (which the run used to refuse: "no readable checkpoint there")."""
    path, inner = Path(path), Path(path) / "checkpoints"
    if not inner.is_dir() or any(p.name.isdigit() and p.is_dir() for p in path.iterdir()):
        return path
    return inner


def one_step_error(resume: str) -> str | None:
    """``trainer.resume=<run>/checkpoints/<step>``, one checkpoint step's directory (its
    ``state``/``meta``): a run resumes from its newest readable checkpoint, so the run
    directory or its ``checkpoints/`` is asked for (it said "no checkpoint in .../238")."""
    path = Path(resume).expanduser()
    if not (path.name.isdigit() and any((path / item).is_dir() for item in ("state", "meta"))):
        return None
    return (f"trainer.resume={resume}: {path} is one checkpoint step of {path.parent}; give "
            "the run directory or its checkpoints/ directory (a run resumes from its newest "
            "readable checkpoint)")


# orbax's message when a restore target's tree differs from the checkpoint's
STRUCTURE_MISMATCH = "tree structures do not match"


def _plain_path(path: tuple) -> tuple[str, ...]:
    """A key path as plain strings: a NamedTuple field restored as a dict key is the same."""
    return tuple(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _key_data(x: Any) -> Any:
    """A typed PRNG key's bits (as orbax saves them); any other leaf as it is."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def _dtype(x: Any) -> np.dtype:
    """A leaf's dtype without copying an array to the host."""
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _cut(text: str, n: int = 160) -> str:
    """``text`` up to ``n`` characters, cut at a space (with "...")."""
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except ValueError:  # (a corrupt meta is replaced)
        return None


def state_digest(state: Any, by_path: bool = False) -> str | None:
    """A hash of the state's arrays (dtype, shape and bytes), saved with each checkpoint and
    checked on restore: bytes damaged on disk were restored without a word (the run then
    "diverged", blaming the learning rate). In tree order, or (``by_path``, saved since stop
    46) each array with its plain key path in path order, which does not depend on the
    nesting (a NamedTuple's fields and a dict's keys alike), so a state restored by its paths
    into another nesting is checked too. None where this process does not hold every shard
    (multi-host)."""
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    if any(isinstance(x, jax.Array) and not x.is_fully_addressable for _, x in flat):
        return None
    if by_path:
        flat = sorted(((_plain_path(p), x) for p, x in flat), key=lambda px: px[0])
    arrays = [np.asarray(x) for x in jax.device_get([_key_data(x) for _, x in flat])]
    if not by_path:  # (a typed PRNG key has no numpy form: its bits)
        return content_hash(arrays)
    return content_hash([part for (path, _), a in zip(flat, arrays, strict=True)
                         for part in ("/".join(path), a)])


class Checkpoints:
    """The checkpoints of one run directory (only the main process writes)."""

    def __init__(self, directory: Path, keep: int = 3, async_save: bool = True,
                 write: bool = True):
        self.directory = Path(directory).absolute()
        self.write, self.keep, self.async_save = write, keep, async_save
        # orbax logs failures of its background threads with tracebacks; they are reported
        # here instead, in one line naming the checkpoint (see poll)
        logging.getLogger("absl").setLevel(logging.CRITICAL)
        _quiet_abandoned_saves()  # (a restore's too: a corrupt checkpoint read)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=write, enable_async_checkpointing=async_save,
            read_only=not write)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "meta"))
        self._in_flight: int | None = None
        self._started: int | None = None  # the step of the last save started
        self.set_aside: list[int] = []  # unreadable steps renamed by restore
        # saved with every step: ``resumed_from``, the checkpoints (trainer.resume=<path>)
        # this run's training started from (a rerun of its command goes on with its own)
        self.lineage: dict[str, Any] = {}
        self.own = False  # restored from its own steps (lifecycle.restore)
        self._closed = False

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Start saving checkpoint ``step`` (asynchronously unless disabled).

        A failure of the previous asynchronous save is raised first, naming that checkpoint.
        """
        if not self.write:
            return
        self.poll(wait=True)
        # a snapshot: the save is asynchronous, and the caller goes on mutating its dicts
        # (the epoch's running sums), which would otherwise be written as of a later step
        meta = json.loads(json.dumps({**meta, **self.lineage}))
        if (digest := state_digest(state, by_path=True)) is not None:
            meta["state_digest_by_path"] = digest
        if step in self.manager.all_steps():
            self._replace_meta(step, meta)
            return
        try:
            self.manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
        except Exception as e:  # noqa: BLE001 - e.g. disk full; the previous save is intact
            # orbax finalizes the previous save here: an error without a path is that save's
            # when it was left unfinished (its temporary directory is still there)
            prev = self._started
            left = prev is not None and (self.directory / f"{prev}.orbax-checkpoint-tmp").exists()
            raise CheckpointError(self._failed(prev if left else step, e)) from None
        self._in_flight = self._started = step

    def _replace_meta(self, step: int, meta: dict[str, Any]) -> None:
        """Checkpoint ``step`` exists (saved when a signal came on an epoch's last step, or by
        the attempt before a resume): its state is this one, but the run has moved on since
        (the epoch was evaluated and closed). Replace its meta in one rename, so that a rerun
        does not evaluate and record that epoch again."""
        path = self.directory / str(step) / "meta" / "metadata"  # orbax's JsonSave item
        try:
            if not path.is_file() or _json_or_none(path) == meta:
                return
            tmp = path.with_name(f".metadata.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, path)
        except (OSError, ValueError) as e:
            raise CheckpointError(self._failed(step, e)) from None

    def poll(self, wait: bool = False) -> None:
        """Raise :class:`CheckpointError` if the save in flight has failed.

        Cheap when nothing is in flight or it is still running (``wait=False``): the loop calls
        it between steps, so a failed save is reported as soon as it is known.
        """
        step = self._in_flight
        if step is None:
            return
        try:
            self.manager.check_for_errors()  # cheap: the background save's recorded error
            if wait:
                self.manager.wait_until_finished()
                self.manager.check_for_errors()
        except Exception as e:  # noqa: BLE001 - the asynchronous save of `step` failed
            self._in_flight = None
            raise CheckpointError(self._failed(step, e)) from None
        if wait or not self.manager.is_saving_in_progress():
            self._in_flight = None

    def _failed(self, step: int | str, e: Exception) -> str:
        # orbax finalizes a save when the next one starts: an error there names the earlier
        # step's temporary directory, and that step is the one that failed
        named = re.search(r"[/\\](\d+)\.orbax-checkpoint-tmp", str(e))
        step = int(named.group(1)) if named else step
        older = [s for s in self.steps() if s != step]
        keep = (f"the previous checkpoint {self.directory / str(older[-1])} is intact"
                if older else "no earlier checkpoint exists")
        return (f"saving checkpoint {step} in {self.directory} failed "
                f"({type(e).__name__}: {str(e).splitlines()[0][:400] if str(e) else ''}); "
                f"{keep}")

    def wait(self) -> None:
        """Block until the save in flight is complete (raising if it failed)."""
        self.poll(wait=True)

    def read_meta(self, step: int) -> dict[str, Any]:
        return self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]

    def newest_meta(self) -> dict[str, Any]:
        """The meta of the newest readable checkpoint (empty: none; :meth:`restore` says
        which are unreadable)."""
        for step in self.steps()[::-1]:
            try:
                return dict(self.read_meta(step))
            except Exception:  # noqa: BLE001 - unreadable: try the previous one
                continue
        return {}

    def restore(self, target: Any, fingerprint: dict[str, Any], say=print,
                step: int | None = None,
                hint: str = "use trainer.resume=never or a new run directory",
                ) -> tuple[Any, dict[str, Any]] | None:
        """Restore the newest readable checkpoint into the structure of ``target``.

        Falls back to older checkpoints when the newest cannot be read (saying so); raises
        :class:`CheckpointError` when a checkpoint belongs to a different model/config.
        Returns ``None`` when there is no checkpoint. ``hint``: how to go on instead, said
        after an incompatible checkpoint.
        """
        steps = [step] if step is not None else self.steps()[::-1]
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        other: list[tuple[int, IncompatibleCheckpoint]] = []  # (another nesting's arrays)
        for s in steps:
            try:
                meta = self.read_meta(s)
            except Exception as e:  # noqa: BLE001
                say(f"checkpoint {self.directory / str(s)} is unreadable "
                    f"({type(e).__name__}){self._set_aside(s)}; trying the previous one")
                continue
            saved_fp = dict(meta.get("fingerprint", {}))
            if isinstance(saved_fp.get("dataset"), str):  # "arrays:a.npz" before: the file's
                saved_fp["dataset"] = saved_fp["dataset"].split(":")[0]  # name is no identity
            current = {k: v for k, v in fingerprint.items()
                       if k in saved_fp or k not in FINGERPRINT_ADDED_LATER}
            saved_fp = {k: v for k, v in saved_fp.items() if k in current or k not in DATA_HASHES}
            if isinstance(saved_fp.get("optimizer"), str) and isinstance(
                    current.get("optimizer"), dict):  # saved before its settings were
                current["optimizer"] = current["optimizer"]["name"]
            elif isinstance(saved_fp.get("optimizer"), dict) and isinstance(
                    current.get("optimizer"), dict):  # saved before the schedule's length was
                current["optimizer"] = {k: v for k, v in current["optimizer"].items()
                                        if k in saved_fp["optimizer"] or "length" not in k}
            if saved_fp != current:
                raise IncompatibleCheckpoint(
                    f"checkpoint {self.directory / str(s)} is from an incompatible run: "
                    f"{describe_difference(saved_fp, current)} ({hint})")
            try:
                state = self.manager.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract)))["state"]
            except Exception as e:  # noqa: BLE001
                # (a readable state of another nesting: by its arrays' paths)
                try:
                    state = (self._restore_by_paths(s, target, hint)
                             if STRUCTURE_MISMATCH in str(e) else None)
                except IncompatibleCheckpoint as why:  # (or a damaged one: an older
                    other.append((s, why))              # checkpoint may restore)
                    continue
                if state is not None:
                    say(f"checkpoint {self.directory / str(s)}: its state is nested as an "
                        "earlier snntrain nested it (e.g. AdamW before its decay was limited "
                        "to the synaptic weights); restored by its arrays' key paths, the "
                        "training goes on under this snntrain's rules")
                else:
                    say(f"checkpoint {self.directory / str(s)} is corrupt or truncated "
                        f"({type(e).__name__}: "
                        f"{_cut(str(e).splitlines()[0] if str(e) else '')})"
                        f"{self._set_aside(s)}; trying the previous one")
                    continue
            if not self._digest_matches(s, meta, state):
                say(f"checkpoint {self.directory / str(s)} is corrupt (its arrays differ from "
                    f"the digest saved with them){self._set_aside(s)}; trying the previous one")
                continue
            for newer, why in other:  # damaged after all: an older one restored
                say(f"checkpoint {self.directory / str(newer)} is corrupt ({why.detail})"
                    f"{self._set_aside(newer)}")
            if s != steps[0]:  # (export said only "trying the previous one", and wrote it)
                say(f"using checkpoint {self.directory / str(s)}, the newest readable one "
                    f"(not step {steps[0]})")
            return state, meta
        if other:  # no checkpoint restores: the newest's structure is another snntrain's
            raise other[0][1]
        return None

    def _digest_matches(self, step: int, meta: dict[str, Any], state: Any) -> bool:
        """Whether ``state`` has the arrays ``meta``'s digest was taken of (True without a
        digest, or multi-host). A checkpoint from before the digest by path holds one in its
        own tree order, which a state of another nesting may not share (orbax restores a
        dict's arrays into a NamedTuple's fields, in another order): failing in the target's
        order, it is taken again of the checkpoint restored in its own nesting."""
        if "state_digest_by_path" in meta:
            return state_digest(state, by_path=True) in (meta["state_digest_by_path"], None)
        if "state_digest" not in meta or state_digest(state) in (meta["state_digest"], None):
            return True
        try:
            raw = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore()))["state"]
        except Exception:  # noqa: BLE001 - unreadable: the digest cannot match
            return False
        flat = jax.tree_util.tree_flatten_with_path
        return ({_plain_path(p) for p, _ in flat(raw)[0]} == {_plain_path(p) for p, _ in
                                                             flat(state)[0]}
                and state_digest(raw) == meta["state_digest"])

    def _restore_by_paths(self, step: int, target: Any, hint: str) -> Any:
        """Checkpoint ``step``'s arrays in ``target``'s structure, matched by their paths, when
        the two differ only in nodes that hold no array (AdamW's decay is wrapped in
        ``optax.masked`` since synaptic-weights-only decay: an earlier run's checkpoint was
        called corrupt, set aside, and the run started again from step 0). None when the
        state cannot be read; :class:`IncompatibleCheckpoint` when its arrays differ."""
        try:
            raw = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore()))["state"]
        except Exception:  # noqa: BLE001 - unreadable: said as corrupt by the caller
            return None
        saved = {_plain_path(p): x for p, x in jax.tree_util.tree_flatten_with_path(raw)[0]}
        flat, treedef = jax.tree_util.tree_flatten_with_path(target)
        wanted = {_plain_path(p): _key_data(x) for p, x in flat}
        differ = sorted(set(saved) ^ set(wanted)) or [
            k for k, x in wanted.items() if np.shape(saved[k]) != np.shape(x)
            or _dtype(saved[k]) != _dtype(x)]
        if differ:
            where = "/".join(differ[0])
            what = (f"{where} is not in this run's state" if differ[0] not in wanted else
                    f"this run's {where} is not in it" if differ[0] not in saved else
                    f"{where} is {np.shape(saved[differ[0]])} {_dtype(saved[differ[0]])} "
                    f"there, {np.shape(wanted[differ[0]])} {_dtype(wanted[differ[0]])} here")
            raise IncompatibleCheckpoint(
                f"checkpoint {self.directory / str(step)} holds a training state of another "
                f"structure (an earlier snntrain's?): {what} ({hint})",
                detail=f"its state's structure differs: {what}")
        leaves = []
        for (path, x) in flat:
            value = saved[_plain_path(path)]
            if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
                value = jax.random.wrap_key_data(jax.numpy.asarray(value),
                                                 impl=jax.random.key_impl(x))
            leaves.append(jax.device_put(value, x.sharding) if isinstance(x, jax.Array)
                          else np.asarray(value))
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def _set_aside(self, step: int) -> str:
        """Rename an unreadable checkpoint ``step`` to ``<step>.unreadable-<time>`` (kept;
        orbax ignores it), so that the run saves that step again in full: it was taken for
        saved, so a run resumed from an earlier one ended "completed" without its final
        parameters on disk, or failed at that step on every rerun (a corrupt meta)."""
        if not self.write:
            return ""
        path = self.directory / str(step)
        new = path.with_name(f"{step}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(new)
            self.manager.reload()
        except OSError:
            return ""
        self.set_aside.append(step)
        return f"; set aside as {new.name}"

    def close(self) -> None:
        """Wait for the save in flight (raising if it failed), then release orbax's threads."""
        try:
            self.wait()
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Release orbax's threads without reporting errors (idempotent; for error paths).

        After a failed save, orbax's ``close`` stops at re-raising that failure (it waits for
        the save first) and leaves its checkpointer's and metadata stores' threads running;
        those are then closed one by one.
        """
        if not self._closed:
            self._closed = True
            try:
                self.manager.close()
            except Exception:  # noqa: BLE001 - the failed save, already reported
                for part in ("_checkpointer", "_non_blocking_metadata_store",
                             "_blocking_metadata_store", "_checkpoint_deleter"):
                    with contextlib.suppress(Exception):
                        getattr(self.manager, part).close()


# ---- an abandoned save's stragglers ----------------------------------------------------------
#
# When one write of an asynchronous save fails (a full disk), orbax's coroutine ends at the
# first error and closes its event loop while TensorStore still runs the save's other writes.
# Each of those, when it ends (often at interpreter exit), calls ``loop.call_soon_threadsafe``
# on the closed loop: TensorStore reports the RuntimeError "Event loop is closed" through
# ``sys.unraisablehook`` (a bare traceback), and asyncio logs every failed write's task as
# "Task exception was never retrieved" when it is collected. Both would follow the one line
# that already reports the failed save (see Checkpoints.poll), so they are dropped; so are the
# failed reads of a corrupt checkpoint's restore (Checkpoints.restore says it in one line); any
# other unraisable exception or asyncio message still shows.


def _failed_read_straggler(u: Any) -> bool:
    """An orbax coroutine that read an array of a corrupt checkpoint and failed after the
    restore had already failed (and said so in one line): never awaited, its exception comes
    through ``sys.unraisablehook`` when it is collected (hundreds of traceback lines)."""
    code = getattr(u.object, "cr_code", None)
    return code is not None and "orbax" in code.co_filename and isinstance(u.exc_value,
                                                                           Exception)


def _closed_loop_straggler(u: Any) -> bool:
    if not (isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed"):
        return False
    tb = u.exc_traceback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
            return True
        tb = tb.tb_next
    return False


class _OrbaxTaskFilter(logging.Filter):
    """Drops asyncio's reports of orbax's tasks and futures left behind by a failed save."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
            if not ("exception was never retrieved" in text or "destroyed but it is pending"
                    in text):
                return True
            if record.exc_info:  # where the task or future failed (a thread of orbax's)
                text += "".join(traceback.format_exception(*record.exc_info))
        except Exception:  # noqa: BLE001
            return True
        return "orbax" not in text


_quieted = False


def _quiet_abandoned_saves() -> None:
    """Install the two filters above (once per process)."""
    global _quieted
    if _quieted:
        return
    _quieted = True
    previous = sys.unraisablehook

    def hook(u: Any) -> None:
        if not (_closed_loop_straggler(u) or _failed_read_straggler(u)):
            previous(u)

    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(_OrbaxTaskFilter())
