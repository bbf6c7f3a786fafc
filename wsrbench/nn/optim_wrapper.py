"""A ``torch.optim.Optimizer`` that delegates to a wrapped one, shared by the optimiser wrappers
(``wsrbench.nn.ProjectedOptimizer``, ``wsrbench.nn.WeightSharingProx``).

Why a subclass that delegates (as ``ZeroRedundancyOptimizer`` does) rather than hooks on the user's
optimiser: the wrapper is what the user holds and passes on, so it must pass
``isinstance(opt, torch.optim.Optimizer)`` (LR schedulers check it), and its ``state_dict`` must
carry its own state next to the wrapped optimiser's (docs/design.md#the-optimiser-it-is).
``param_groups``, ``state`` and ``defaults`` are the wrapped optimiser's own objects, read live, so
``load_state_dict`` (which replaces the group dicts) and schedulers reach both at once.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch


class OptimizerWrapper(torch.optim.Optimizer):
    """An Optimizer whose param groups, state and defaults are ``self.optimizer``'s.

    ``step`` is the subclass's; ``zero_grad``, ``add_param_group`` and everything not defined here
    go to the wrapped optimiser. ``state_dict()`` is the wrapped optimiser's plus, under the key
    ``STATE_KEY``, what ``_extra_state()`` returns (a dict of plain Python values, so that
    ``torch.save`` / ``torch.load(weights_only=True)`` take it); a bare optimiser loads such a
    state dict too (torch ignores the extra key).
    """

    STATE_KEY = "wrapper"

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        # Optimizer.__init__ is not called: it would build param groups of our own. Its hook
        # tables and the profiling/hook wrapper of step() are set up as it would.
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()

    # The wrapped optimiser's objects, looked up at every access (never cached: load_state_dict
    # replaces the group dicts).
    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Any:
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property  # type: ignore[override]
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    # -- checkpoints ---------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any] | None:
        return None

    def _check_extra_state(self, extra: dict[str, Any] | None) -> None:
        """Raise on a state that does not fit, before anything is loaded."""

    def _load_extra_state(self, extra: dict[str, Any] | None) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        sd = self.optimizer.state_dict()
        extra = self._extra_state()
        if extra is not None:
            sd[self.STATE_KEY] = extra
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            out = post_hook(self, sd)
            sd = sd if out is None else out
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        sd = dict(state_dict)  # the caller's dict is not modified
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            out = pre_hook(self, sd)
            sd = sd if out is None else out
        extra = sd.pop(self.STATE_KEY, None)
        self._check_extra_state(extra)
        self.optimizer.load_state_dict(sd)
        self._load_extra_state(extra)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # -- copies and pickling: the whole object (Optimizer's versions keep only the groups) -------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # an LR scheduler's patch of step() holds a reference to *this* object: a copy must not
        # step the original (torch's own optimisers drop it the same way)
        state.pop("step", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

    def __getattr__(self, name: str) -> Any:
        # only reached for names not found on the wrapper: the wrapped optimiser's attributes
        if name == "optimizer" or name.startswith("__"):  # not set yet (copy/pickle)
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.optimizer!r})"
