"""Cache prefetch hints for the compiled passes over whole columns.

The scatter and gather passes of the replay are bound by cache misses the hardware cannot
foresee; a hint issued some rows ahead lets the misses overlap (docs/performance.md).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _prefetch_intrinsic(write: int):
    """An intrinsic ``(array, index) -> None`` that asks the CPU to bring the array's element
    at ``index`` into the cache (for writing when ``write``), as ``__builtin_prefetch`` does.

    The scatter and gather passes are bound by cache misses the hardware cannot foresee;
    issued some rows ahead, the misses overlap (docs/performance.md). A prefetch never
    faults, so the index needs no check.
    """

    def prefetch(typingctx, arr, idx):
        if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
            return None
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            ary = context.make_array(aty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1]], wraparound=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch")
            # (address, read 0 / write 1, locality 3: keep in all levels, data cache 1)
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, write), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen

    prefetch.__name__ = f"prefetch_{'write' if write else 'read'}"
    return intrinsic(prefetch)


def _no_prefetch(arr: np.ndarray, idx: int) -> None:
    """A prefetch is only a hint: without the JIT (``NUMBA_DISABLE_JIT=1``) it does nothing."""


if nb.config.DISABLE_JIT:  # plain Python, for a debugger or coverage: the hints go
    prefetch_read = prefetch_write = _no_prefetch
else:
    prefetch_read = _prefetch_intrinsic(0)
    prefetch_write = _prefetch_intrinsic(1)
#: How many rows ahead the random passes prefetch (enough to overlap a few dozen misses).
AHEAD = 16

