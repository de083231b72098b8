"""Symbolic strategy parameters: call a strategy once for a whole sweep grid.

A sweep calls the strategy's `entry`, `exit` and `rank` with a parameter set whose swept values
are `Sym`s. A Sym records the arithmetic done on it (+, -, *, / with numbers or Syms, unary - and
+) as an expression, so a threshold such as `-p.dip` or a window such as `3 * p.w` can be
evaluated later for every value of the grid, with the same Python operations on the same values
as a call with those values would do. Anything else that depends on the value (a comparison or
`if`, `float()`, `int()`, `hash`, formatting, `math` or numpy functions, ...) *escapes*: the Sym
records it and raises `Escape`, and the sweep calls the strategy once per parameter set instead.
`backtest.sweep.compile_sweep` also checks the traced rules against real calls before using them.
"""

from __future__ import annotations

import operator
from typing import Any, Callable


class Escape(BaseException):
    """A Sym's value was needed (a BaseException, so a strategy's `except Exception` cannot hide it)."""


class Trace:
    """The Syms of one traced call; `escaped` is set when any of them escaped, caught or not."""

    def __init__(self) -> None:
        self.escaped = False


_BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv}


def _binary(name: str, reflected: bool) -> Callable:
    op = _BINARY[name]

    def method(self: Sym, other: Any) -> Sym:
        if type(other) not in (int, float) and not isinstance(other, Sym):
            self._escape()
        kind = float if name == "truediv" or float in (self._type, getattr(other, "_type", type(other))) else int
        return Sym(self._trace, (op, other, self) if reflected else (op, self, other), kind)

    return method


class Sym:
    """A swept parameter's value, or arithmetic on it, not known while the strategy runs."""

    __slots__ = ("_trace", "_expr", "_type")

    def __init__(self, trace: Trace, expr: Any, kind: type) -> None:
        self._trace, self._expr, self._type = trace, expr, kind

    @property
    def __class__(self) -> type:  # isinstance(p.dip, float) holds, as for the value itself
        return self._type

    def _escape(self, *args: Any, **kwargs: Any) -> Any:
        self._trace.escaped = True
        raise Escape

    __add__, __radd__ = _binary("add", False), _binary("add", True)
    __sub__, __rsub__ = _binary("sub", False), _binary("sub", True)
    __mul__, __rmul__ = _binary("mul", False), _binary("mul", True)
    __truediv__, __rtruediv__ = _binary("truediv", False), _binary("truediv", True)

    def __neg__(self) -> Sym:
        return Sym(self._trace, (operator.neg, self), self._type)

    def __pos__(self) -> Sym:
        return Sym(self._trace, (operator.pos, self), self._type)

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _escape
    __float__ = __int__ = __index__ = __complex__ = __round__ = __trunc__ = __floor__ = __ceil__ = _escape
    __abs__ = __invert__ = __pow__ = __rpow__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _escape
    __divmod__ = __rdivmod__ = __matmul__ = __rmatmul__ = __lshift__ = __rshift__ = _escape
    __and__ = __or__ = __xor__ = __rand__ = __ror__ = __rxor__ = _escape
    __str__ = __repr__ = __format__ = __bytes__ = __len__ = __iter__ = __contains__ = __getitem__ = _escape
    __call__ = __array__ = __reduce__ = __reduce_ex__ = __copy__ = __deepcopy__ = __getstate__ = _escape
    __array_ufunc__ = __array_function__ = _escape  # numpy: np.log(p.x), np.float64(2) * p.x, np.clip, ...
    __getattr__ = _escape  # any other attribute

    def evaluate(self, values: dict[str, Any], done: dict[int, Any] | None = None) -> Any:
        """The value for the swept values `values` (name -> value): the recorded operations replayed,
        each once (`t = t + t` repeated n times is n operations, as in the call, not 2**n)."""
        e = self._expr
        if isinstance(e, str):
            return values[e]
        if done is None:
            done = {}
        elif id(self) in done:
            return done[id(self)]
        v = done[id(self)] = e[0](*[a.evaluate(values, done) if isinstance(a, Sym) else a for a in e[1:]])
        return v


def evaluator(x: Any) -> Callable[[dict[str, Any]], Any] | None:
    """`x.evaluate` for a Sym, None for anything else (a constant)."""
    return x.evaluate if isinstance(x, Sym) else None


def symbols(names: list[str], kinds: list[type]) -> tuple[Trace, dict[str, Sym]]:
    """A new trace and one Sym per swept parameter."""
    trace = Trace()
    return trace, {n: Sym(trace, n, k) for n, k in zip(names, kinds)}
