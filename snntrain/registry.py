"""Name → builder lookup shared by every config group (surrogates, neurons, encoders, models,
optimizers, datasets).

A :class:`Registry` maps the ``name:`` of a config group to a class or factory and builds it
from the group's dict, with one-line errors that say what is valid::

    NEURONS = Registry("neuron", {"lif": LIF, "if": IF})
    NEURONS.build({"name": "lif", "beta": 0.5})     # == LIF(beta=0.5)
    NEURONS.build({"name": "izh"})                  # unknown neuron 'izh'; valid: if, lif
    NEURONS.create("if", beta=0.5)                  # neuron 'if' takes no parameter 'beta'; ...

The accepted parameters are read from the entry itself (a dataclass's init fields, else its
call signature), so the registry never repeats a default or a parameter list.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from omegaconf import DictConfig, OmegaConf

from snntrain.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])

KEY = "name"


def plain(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """A config group as a plain ``dict`` (a ``DictConfig`` resolved, nested values included)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg or {})


def parameters(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """The keyword parameters ``fn`` accepts, in declaration order (``None``: any, ``**kw``).

    A dataclass gives its init fields, another class its ``__init__`` (a metaclass, such as
    flax's, may hide it behind ``*args, **kwargs``), anything else its call signature.
    """
    if isinstance(fn, type):
        if dataclasses.is_dataclass(fn):
            return tuple(f.name for f in dataclasses.fields(fn) if f.init)
        params = list(inspect.signature(fn.__init__).parameters.values())[1:]  # without self
    else:
        params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping ``name -> builder`` for one config group, filled by :meth:`add`
    or the :meth:`register` decorator.

    Args:
      what: the group, as errors name it (``"neuron"``, ``"optimizer.schedule"``).
      entries: initial ``{name: builder}``.
      error: the exception raised for a bad name or parameter (a ``ValueError`` subclass).
      hint: appended to the unknown-name error (e.g. how to reach further entries).
      owner: how a parameter error names the entry (``{what}`` and ``{name}`` are filled in).
      internal: parameters set by code that a config may not set (left out of the valid list).
    """

    def __init__(
        self,
        what: str,
        entries: Mapping[str, T] | None = None,
        *,
        error: type[ValueError] = ConfigError,
        hint: str = "",
        owner: str = "{what} {name!r}",
        internal: Collection[str] = (),
    ):
        self.what, self.error, self.hint, self.owner = what, error, hint, owner
        self.internal = frozenset(internal)
        self._entries: dict[str, T] = {}
        for name, fn in (entries or {}).items():
            self.add(name, fn)

    def add(self, name: str, fn: T) -> T:
        """Register ``fn`` under ``name`` (a name may be registered once)."""
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = fn
        return fn

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register("lif") class LIF: ...``."""
        return lambda fn: self.add(name, fn)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._entries))

    def lookup(self, name: str) -> T:
        """The builder of ``name``, or the one-line error listing the valid names."""
        if not isinstance(name, str) or name not in self._entries:
            raise self.error(
                f"unknown {self.what} {name!r}; valid: {', '.join(self.names())}{self.hint}"
            )
        return self._entries[name]

    def params(self, name: str, given: Collection[str] = ()) -> tuple[str, ...] | None:
        """The parameters a config may set for ``name`` (``None``: any), in declaration order;
        ``given`` (set by the caller) and :attr:`internal` are left out."""
        valid = parameters(self.lookup(name))
        if valid is None:
            return None
        return tuple(p for p in valid if p not in self.internal and p not in given)

    def create(self, name: str, /, **params: Any) -> Any:
        """``self[name](**params)``, after checking every parameter is accepted."""
        self.check(name, params)
        return self._entries[name](**params)

    def build(self, cfg: Mapping[str, Any], /, **given: Any) -> Any:
        """Build from a config group's dict: ``self[cfg["name"]](**rest_of_cfg, **given)``.

        ``given`` are arguments the caller supplies (shapes, seeds); a config key that names
        one of them is rejected like any unknown parameter.
        """
        params = plain(cfg)
        if KEY not in params:
            raise self.error(f"{self.what}.{KEY} is missing; valid: {', '.join(self.names())}")
        name = params.pop(KEY)
        self.check(name, params, given)
        return self._entries[name](**params, **given)

    def check(
        self,
        name: str,
        params: Collection[str],
        given: Collection[str] = (),
        also: Sequence[str] = (),
    ) -> None:
        """Raise the one-line error for the first parameter in ``params`` that ``name`` does
        not accept (the valid ones listed); ``also`` are further valid names (the caller's)."""
        valid = self.params(name, given)
        if valid is None:
            return
        valid = tuple(dict.fromkeys((*also, *valid)))
        for key in params:
            if key not in valid:
                owner = self.owner.format(what=self.what, name=name)
                raise self.error(
                    f"{owner} takes no parameter {key!r}; valid: {', '.join(valid) or '(none)'}"
                )
