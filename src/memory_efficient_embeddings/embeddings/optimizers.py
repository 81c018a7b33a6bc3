"""Row-sparse ("lazy") Adam and row-wise Adagrad for embedding tables.

Keras 3's :class:`keras.optimizers.Adam` writes its update with dense ``ops``
calls, so a ``tf.IndexedSlices`` gradient of an embedding table (what
``tf.gather`` / ``ops.take`` / ``keras.layers.Embedding`` produce on the
TensorFlow backend) is densified: every step rewrites every row of the table
and of both moment slots, although a batch touches only a few hundred rows.

:class:`LazyAdam` keeps that update row-sparse, like TF-Addons ``LazyAdam`` and
TF1's ``LazyAdamOptimizer``: for a sparse gradient only the touched rows of
``m``, ``v`` and the variable are read and written, with the usual bias
correction from the global step. Rows a batch does not touch keep their moments
and weights unchanged (dense Adam would keep moving them with their momentum).
Dense gradients (Dense kernels, biases) get exactly ordinary Adam.

**JAX** has no sparse gradients: every table gets a dense gradient, so no update there can be
proportional to the rows a batch touches. Both optimizers compute the same numbers as on
TensorFlow at the cost of dense Adam / Adagrad (see each class).
"""

from __future__ import annotations

import math
import re
from typing import Any

import keras
from keras import ops

from memory_efficient_embeddings.embeddings import backends

__all__ = ["LazyAdam", "RowWiseAdagrad"]

# Keras' Embedding layer names its table variable "embeddings": every table of this library.
TABLE_VARIABLES = r"(^|/)embeddings$"


def _in_xla_context() -> bool:
    """Whether the op being built is inside an XLA (``jit_compile``) cluster (TensorFlow).

    ``tf.unique`` has a data-dependent output shape and XLA cannot compile it,
    so the sparse path is only usable with ``jit_compile=False``. This reads a
    TensorFlow-internal helper; if it moves, we assume no XLA and let TF raise.
    """
    import tensorflow as tf  # noqa: PLC0415 - the sparse path runs on TensorFlow only

    try:
        from tensorflow.python.ops import control_flow_util  # noqa: PLC0415
    except ImportError:  # pragma: no cover - depends on TF internals
        return False
    graph = tf.compat.v1.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def _densified(gradient: Any) -> Any:
    """A ``tf.IndexedSlices`` gradient as the dense tensor dense Adam expects (TF only)."""
    import tensorflow as tf  # noqa: PLC0415 - IndexedSlices exist on TensorFlow only

    return tf.convert_to_tensor(gradient)


def _touched_rows(gradient: Any) -> Any:
    """Per row of a dense gradient, whether any of its entries is non-zero (a row read)."""
    if len(gradient.shape) == 1:
        return ops.not_equal(gradient, 0)
    return ops.any(ops.not_equal(gradient, 0), axis=tuple(range(1, len(gradient.shape))))


# Skipped steps replayed one by one (each with its own bias correction) before the closed-form
# tail takes over: with beta_1 = 0.9, beta_2 = 0.999 a skipped step's weight r**j falls below
# 2e-6 of the first one by j = 128, so the tail's approximation does not show in float32.
EXACT_SKIPPED_STEPS = 128


def _skipped_steps_weight(beta_1: Any, beta_2: Any, last_step: Any, skipped: Any) -> Any:
    """Per row, ``sum_{j=1..k} c(t0 + j) * r**j`` in float64 (``k = skipped``, ``t0 = last_step``).

    Dense Adam moves a row whose gradient is zero by ``lr * c(s) * m_s / (sqrt(v_s) + eps)`` at
    step ``s``, with the bias correction ``c(s) = sqrt(1 - beta_2**s) / (1 - beta_1**s)`` and
    ``m_s / sqrt(v_s) = r**j * m / sqrt(v)`` after ``j`` such steps, ``r = beta_1 / sqrt(beta_2)``
    (``eps`` left out of the skipped steps). The first :data:`EXACT_SKIPPED_STEPS` terms are
    summed exactly, so the fast-changing bias correction early in training is replayed rather than
    assumed settled. Further steps form a geometric tail taken at the bias correction of its
    ``r``-weighted mean step, written as ``expm1(n log r) / expm1(log r)`` so that ``r == 1``
    (``beta_1 == sqrt(beta_2)``) takes the limit ``n`` instead of ``0 / 0``.

    ``beta_1`` and ``beta_2`` come rounded to the variable's dtype, as dense Adam uses them.
    """
    beta_1 = ops.cast(beta_1, "float64")
    beta_2 = ops.cast(beta_2, "float64")
    log_ratio = ops.log(beta_1) - 0.5 * ops.log(beta_2)
    last_step = ops.cast(last_step, "float64")
    skipped = ops.cast(skipped, "float64")
    offsets = ops.arange(1, EXACT_SKIPPED_STEPS + 1, dtype="float64")
    # beta**(t0 + j) as beta**t0 * beta**j: one power per row and one per offset, not per pair.
    beta_1_last, beta_2_last = ops.power(beta_1, last_step), ops.power(beta_2, last_step)
    bias_correction = ops.sqrt(1 - beta_2_last[:, None] * ops.power(beta_2, offsets)) / (
        1 - beta_1_last[:, None] * ops.power(beta_1, offsets)
    )
    terms = bias_correction * ops.exp(offsets * log_ratio)
    head = ops.sum(ops.where(offsets <= skipped[:, None], terms, ops.zeros_like(terms)), axis=1)

    # Steps EXACT_SKIPPED_STEPS + 1 .. k: c(centre) * r**(EXACT_SKIPPED_STEPS + 1) * sum_{i<n} r**i.
    tail_steps = ops.maximum(skipped - EXACT_SKIPPED_STEPS, 0)
    near_one = ops.abs(log_ratio) < 1e-12
    safe_log_ratio = ops.where(near_one, ops.ones_like(log_ratio), log_ratio)
    geometric = ops.where(
        near_one,
        tail_steps,
        ops.expm1(tail_steps * safe_log_ratio) / ops.expm1(safe_log_ratio),
    )
    # Mean offset of a geometric weight over n steps: r / (1 - r) - n r**n / (1 - r**n) for r < 1;
    # (n - 1) / 2 otherwise (exact at r == 1).
    steps = ops.maximum(tail_steps, 1)
    ratio = ops.exp(safe_log_ratio)
    ratio_n = ops.exp(steps * safe_log_ratio)
    mean_offset = ops.where(
        log_ratio < -1e-12,
        ratio / (1 - ratio) - steps * ratio_n / (1 - ratio_n),
        (steps - 1) / 2,
    )
    centre = EXACT_SKIPPED_STEPS + 1 + mean_offset
    centre_correction = ops.sqrt(1 - beta_2_last * ops.power(beta_2, centre)) / (
        1 - beta_1_last * ops.power(beta_1, centre)
    )
    first_tail_weight = ops.exp((EXACT_SKIPPED_STEPS + 1) * log_ratio)
    return head + centre_correction * first_tail_weight * geometric


@keras.saving.register_keras_serializable(package="memory_efficient_embeddings")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose update of an embedding table touches only the batch's rows.

    For a ``tf.IndexedSlices`` gradient (TensorFlow backend), the step

    1. sums the gradient rows of duplicate indices (``tf.unique`` +
       ``tf.math.unsorted_segment_sum``), so a row looked up twice in a batch
       gets one update with the summed gradient, exactly as dense Adam sees it;
    2. gathers those rows of ``m`` and ``v``, applies the Adam moment update to
       them only and writes them back with ``scatter_update``;
    3. subtracts ``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) +
       epsilon)`` from those rows of the variable with ``scatter_sub``, where
       ``t`` is the global step (``iterations + 1``), as in Keras' Adam.

    On the first step from zero moments this equals dense Adam for the touched
    rows; afterwards, rows a batch does not touch are left alone (their moments
    do not decay and the weights do not drift with stale momentum). That is the
    documented "lazy" behaviour, standard for recommender embedding tables, and
    it makes the update cost proportional to the rows touched, not the table.

    Any other gradient (a dense ``Tensor``) goes to :meth:`Adam.update_step`.

    Base-class options and what they mean for sparse rows:

    * ``clipnorm``: Keras' TF backend clips with ``tf.clip_by_norm``, which
      keeps ``IndexedSlices`` sparse; the norm is that of the (not yet
      deduplicated) gradient rows. Sparse path kept.
    * ``clipvalue``: ``ops.clip`` keeps ``IndexedSlices`` sparse (it clips the
      values element-wise). Sparse path kept.
    * ``global_clipnorm``: Keras rescales with dense ``ops``, which turns the
      gradient into a dense tensor, so tables fall back to dense Adam (correct,
      just not lazy).
    * ``gradient_accumulation_steps``: the accumulator is a dense variable, so
      gradients arrive dense and the dense Adam path is used.
    * ``weight_decay``: the base class applies decoupled weight decay to the
      *whole* variable before ``update_step`` (every row, every step). That is
      kept unchanged, so it costs O(table) per step; exclude embedding tables
      with ``exclude_from_weight_decay`` if the row-sparse cost matters.
    * ``loss_scale_factor``: Keras 3.15 divides each gradient with ``g /
      scale``, which ``tf.IndexedSlices`` does not support (``TypeError``, also
      with plain ``Adam``); wrap in ``keras.optimizers.LossScaleOptimizer``
      instead, which unscales with ``ops.divide`` and keeps the slices sparse.
    * ``use_ema``: the moving average is dense, as in the base class.
    * ``amsgrad=True`` is not supported (raises ``ValueError``).

    ``catch_up`` (default ``True``): a row that a batch skips would, under dense Adam, keep moving
    by ``lr * c(s) * m_s / sqrt(v_s)`` with ``m`` and ``v`` decaying by ``beta_1`` and ``beta_2``
    each step and the bias correction ``c(s)`` of each step ``s``. Plain lazy Adam drops those
    steps, which slows rarely seen rows (measured: 0.05 worse val MAE after 3 epochs on
    ml-1m-shaped data). With ``catch_up`` each row remembers the step of its last update; when it
    is touched again, the skipped steps are applied at once, ``lr * m / sqrt(v) * sum_j c(t0 + j)
    * (beta_1 / sqrt(beta_2))**j`` (the first 128 skipped steps term by term with their own bias
    corrections, any further ones as a geometric tail), and ``m``, ``v`` are decayed by
    ``beta_1**k``, ``beta_2**k``, before the ordinary update. The work is still proportional to
    the touched rows (plus one int64 per table row of memory). A row touched again matches dense
    Adam to float32 rounding (measured: ≤ 7e-6 of the row's movement after 60–300 steps from
    iteration 0, 1,000 or 5,000, ``benchmarks/catch_up_gap.py``), with three approximations:
    ``epsilon`` is left out of the skipped steps (it matters only once ``sqrt(v)`` has decayed to
    about ``epsilon``, which for ``beta_1 == sqrt(beta_2)`` happens within a long gap: there the
    skipped steps do not shrink and the catch-up overshoots; ``beta_1 > sqrt(beta_2)`` is refused);
    the learning rate of the current step is used for all of them (a schedule's earlier values
    are not replayed); the tail beyond 128 steps takes one bias correction (≤ 0.2% of the move
    with ``beta_1 = 0.99`` early in training, float32 rounding with the defaults). Rows never
    touched again stay where they are.
    ``False`` gives TF-Addons' ``LazyAdam``.

    ``sparse_min_size``: tables with fewer elements than this get ordinary dense Adam even for
    sparse gradients. On a small table (a quotient-remainder factor, a bias column) the sparse
    bookkeeping costs more per step than rewriting the whole table, and dense Adam's momentum on
    untouched rows is exact Adam. ``0`` (the default) keeps every sparse gradient lazy.

    The sparse path uses ``tf.unique``, which XLA cannot compile: compile the
    model with ``jit_compile=False`` (Keras' ``"auto"`` already resolves to
    ``False`` on CPU-only machines and for models with ``StringLookup``).

    **On JAX** (dense gradients only) the same numbers come at dense Adam's cost, O(table) per
    step: with ``catch_up`` every variable gets Keras' dense Adam, which is exactly what the
    catch-up replays (untouched rows keep moving with their momentum); with ``catch_up=False``
    each table (a variable whose path matches ``embeddings``, i.e. every ``Embedding`` table, of
    at least ``sparse_min_size`` elements) gets the lazy update with its untouched rows masked
    out. A row counts as touched when its gradient is not all zero (on TensorFlow: when the
    batch reads it; the two differ only for a row read with an exactly zero gradient). A dense
    step records every row as updated, so the optimizer state stays valid on either path.
    """

    def __init__(
        self,
        learning_rate: float | Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        *,
        catch_up: bool = True,
        sparse_min_size: int = 0,
        name: str | None = "lazy_adam",
        **kwargs: Any,
    ) -> None:
        if amsgrad:
            # AMSGrad's running max of v has no agreed lazy counterpart and the
            # sparse path does not keep a velocity_hat slot.
            raise ValueError(
                "LazyAdam does not support amsgrad=True; use "
                "keras.optimizers.Adam(amsgrad=True) instead."
            )
        if sparse_min_size < 0:
            raise ValueError(f"sparse_min_size must be >= 0; got {sparse_min_size}.")
        if (
            catch_up
            and isinstance(beta_1, (int, float))
            and isinstance(beta_2, (int, float))
            and beta_1 > math.sqrt(beta_2)
        ):
            # Skipped moves then grow as (beta_1 / sqrt(beta_2))**j until epsilon bounds them,
            # which the epsilon-free catch-up cannot follow: it would overflow on long gaps.
            raise ValueError(
                f"LazyAdam(catch_up=True) needs beta_1 <= sqrt(beta_2); got beta_1={beta_1}, "
                f"beta_2={beta_2}. Pass catch_up=False for these betas."
            )
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=False,
            name=name,
            **kwargs,
        )
        self.sparse_min_size = int(sparse_min_size)
        self.catch_up = bool(catch_up)

    def build(self, var_list: list) -> None:
        """Adam's slots, plus each row's last-update step when ``catch_up`` is on."""
        if self.built:
            return
        super().build(var_list)
        # update_step may see the backend's variable, which has no path: decide here, by key.
        table_pattern = re.compile(TABLE_VARIABLES)
        self._table_keys = {
            self._var_key(v) for v in var_list if table_pattern.search(getattr(v, "path", ""))
        }
        if self.catch_up:
            # One counter per row (scalars and vectors get one per element; they are never
            # sparse, so these stay unused and tiny).
            self._last_updates = [
                self.add_variable(
                    shape=(int(variable.shape[0]) if len(variable.shape) else 1,),
                    initializer="zeros",
                    dtype="int64",
                    name=f"{variable.name}_last_update",
                )
                for variable in var_list
            ]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Row-sparse Adam for ``tf.IndexedSlices``, masked lazy Adam or ordinary Adam otherwise."""
        if backends.is_indexed_slices(gradient):
            if math.prod(variable.shape) < self.sparse_min_size:
                self._dense_update_step(_densified(gradient), variable, learning_rate)
                return
            if _in_xla_context():
                raise ValueError(
                    "LazyAdam's sparse update uses tf.unique, which XLA cannot "
                    "compile. Compile the model with jit_compile=False."
                )
            self._sparse_update_step(gradient, variable, learning_rate)
            return
        if (
            not self.catch_up
            and self._var_key(variable) in self._table_keys
            and math.prod(variable.shape) >= self.sparse_min_size
        ):
            self._masked_update_step(gradient, variable, learning_rate)
            return
        self._dense_update_step(gradient, variable, learning_rate)

    def _dense_update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Keras' Adam; every row moved, so every row's last update is now (``catch_up``)."""
        super().update_step(gradient, variable, learning_rate)
        if self.catch_up and len(variable.shape):
            last_update = self._last_updates[self._get_variable_index(variable)]
            now = ops.cast(self.iterations + 1, "int64")
            self.assign(last_update, ops.full(last_update.shape, now, dtype="int64"))

    def _alpha(self, learning_rate: Any, dtype: str) -> Any:
        """Adam's step size at the global step ``iterations + 1``, bias corrections included."""
        # Global step, not a per-row count: same bias correction as dense Adam
        # and as TF-Addons / TF1 LazyAdam.
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
        return ops.cast(learning_rate, dtype) * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _masked_update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Lazy Adam without catch-up on a dense gradient: rows with a zero gradient keep all."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        row_shape = [-1] + [1] * (len(variable.shape) - 1)
        touched = ops.reshape(_touched_rows(gradient), row_shape)
        # Keras' Adam, term for term (as in the sparse path), written only where touched.
        new_m = m.value + (gradient - m.value) * (1 - self.beta_1)
        new_v = v.value + (ops.square(gradient) - v.value) * (1 - self.beta_2)
        self.assign(m, ops.where(touched, new_m, m.value))
        self.assign(v, ops.where(touched, new_v, v.value))
        step = (new_m * self._alpha(learning_rate, dtype)) / (ops.sqrt(new_v) + self.epsilon)
        self.assign_sub(variable, ops.where(touched, step, ops.zeros_like(step)))

    def _sparse_update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        import tensorflow as tf  # noqa: PLC0415 - IndexedSlices exist on TensorFlow only

        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        alpha = self._alpha(learning_rate, dtype)

        # Sum duplicate rows first: Adam is nonlinear in g, so updating a row
        # once per occurrence would differ from dense Adam, and scatter_update
        # with duplicate indices keeps an arbitrary one of the writes.
        unique_indices, positions = tf.unique(gradient.indices)
        grad_rows = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype),
            positions,
            num_segments=tf.shape(unique_indices)[0],
        )

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        # Keras Variables wrap a tf.Variable; gather from that directly.
        m_rows = tf.gather(m.value, unique_indices)
        v_rows = tf.gather(v.value, unique_indices)
        # Per-row factors broadcast over every trailing axis (1-D, 2-D, 3-D ... variables).
        row_shape = [-1] + [1] * (len(variable.shape) - 1)

        catch_up = None
        if self.catch_up:
            last_update = self._last_updates[index]
            last_rows = tf.gather(last_update.value, unique_indices)
            # Clamped at 0 in case `iterations` was set back below a row's last update.
            skipped = tf.maximum(self.iterations - last_rows, 0)
            weight = _skipped_steps_weight(beta_1, beta_2, last_rows, skipped)
            catch_up = (
                lr
                * tf.reshape(ops.cast(weight, dtype), row_shape)
                * m_rows
                / (tf.sqrt(v_rows) + ops.cast(self.epsilon, dtype))
            )
            skipped = ops.cast(skipped, dtype)
            m_rows = m_rows * tf.reshape(ops.power(beta_1, skipped), row_shape)
            v_rows = v_rows * tf.reshape(ops.power(beta_2, skipped), row_shape)
            self.assign(
                last_update,
                tf.IndexedSlices(
                    tf.fill(tf.shape(unique_indices), self.iterations + 1), unique_indices
                ),
            )

        # Keras' Adam, term for term: ``1 - self.beta_1`` is taken from the Python float (exact
        # 0.1, 0.001), not from the float32-rounded beta, so touched rows match it bit for bit.
        m_rows = m_rows + (grad_rows - m_rows) * (1 - self.beta_1)
        v_rows = v_rows + (tf.square(grad_rows) - v_rows) * (1 - self.beta_2)

        # TFOptimizer.assign / assign_sub turn IndexedSlices values into
        # scatter_update / scatter_sub on the underlying tf.Variable.
        self.assign(m, tf.IndexedSlices(m_rows, unique_indices))
        self.assign(v, tf.IndexedSlices(v_rows, unique_indices))
        step = (m_rows * alpha) / (tf.sqrt(v_rows) + self.epsilon)
        if catch_up is not None:
            step = step + catch_up
        self.assign_sub(variable, tf.IndexedSlices(step, unique_indices))

    def get_config(self) -> dict[str, Any]:
        """Adam's config (amsgrad is always False) plus ``catch_up`` and ``sparse_min_size``."""
        return {
            **super().get_config(),
            "catch_up": self.catch_up,
            "sparse_min_size": self.sparse_min_size,
        }


@keras.saving.register_keras_serializable(package="memory_efficient_embeddings")
class RowWiseAdagrad(keras.optimizers.Adagrad):
    """Adagrad with one accumulator per table row (FBGEMM's ``rowwise_adagrad``), row-sparse.

    For a table (a 2-D variable whose path matches ``table_variables``: every
    ``keras.layers.Embedding`` table), each row ``r`` keeps one accumulator ``a_r``. With the
    gradient ``g_r`` summed over the batch's occurrences of the row (duplicate ids summed first):

        a_r += mean(g_r ** 2)          (the mean over the row's width)
        w_r -= lr * g_r / (sqrt(a_r) + epsilon)

    as FBGEMM's split-table-batched ``rowwise_adagrad`` (no weight decay), with ``a_r`` starting
    at ``initial_accumulator_value``. A ``tf.IndexedSlices`` gradient (TensorFlow backend) updates
    only the touched rows of the table and of its accumulators, with scatter ops; a dense gradient
    gives the same values for every row (an untouched row has ``g_r = 0`` and does not move).
    The state is one value per row instead of one per weight: ``4·n`` bytes for an ``n × d``
    float32 table, against Adam's ``8·n·d``.

    Every other variable (Dense kernels, biases, CCE, TT-Rec and ROBE weights) gets Keras' own
    :class:`keras.optimizers.Adagrad` step, element-wise, unchanged.

    The sparse path uses ``tf.unique``, which XLA cannot compile: use ``jit_compile=False``.
    On JAX (dense gradients only) every table takes the dense form: the same numbers, at
    O(table) per step.

    Args:
        table_variables: regular expression on ``variable.path`` naming the tables.
    """

    def __init__(
        self,
        learning_rate: float | Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        *,
        table_variables: str = TABLE_VARIABLES,
        name: str | None = "rowwise_adagrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            initial_accumulator_value=initial_accumulator_value,
            epsilon=epsilon,
            name=name,
            **kwargs,
        )
        self.table_variables = table_variables
        self._table_pattern = re.compile(table_variables)

    def is_table(self, variable: Any) -> bool:
        """Whether a model variable gets row-wise state: 2-D, with a path matching the pattern."""
        return len(variable.shape) == 2 and bool(self._table_pattern.search(variable.path))

    def build(self, var_list: list) -> None:
        """One accumulator per row for tables, one per weight for everything else."""
        if self.built:
            return
        # Skip Adagrad.build (a full-size accumulator for every variable) but keep the base's.
        keras.optimizers.Optimizer.build(self, var_list)
        initializer = keras.initializers.Constant(self.initial_accumulator_value)
        # update_step may see the backend's variable, which has no path: decide here, by key.
        self._table_keys = {self._var_key(v) for v in var_list if self.is_table(v)}
        self._accumulators = []
        for variable in var_list:
            if self._overwrite_variable_with_gradient(variable):
                self._accumulators.append(None)
            elif self._var_key(variable) in self._table_keys:
                self._accumulators.append(
                    self.add_variable(
                        shape=(int(variable.shape[0]),),
                        initializer=initializer,
                        dtype=variable.dtype,
                        name=f"{variable.path.replace('/', '_')}_row_accumulator",
                    )
                )
            else:
                self._accumulators.append(
                    self.add_variable_from_reference(
                        variable, "accumulator", initializer=initializer
                    )
                )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Row-wise for tables (row-sparse for ``tf.IndexedSlices``), Keras' Adagrad otherwise."""
        if self._var_key(variable) not in self._table_keys:
            super().update_step(gradient, variable, learning_rate)
            return
        accumulator = self._accumulators[self._get_variable_index(variable)]
        lr = ops.cast(learning_rate, variable.dtype)
        epsilon = ops.cast(self.epsilon, variable.dtype)
        if not backends.is_indexed_slices(gradient):
            # Also the JAX path: an untouched row has a zero gradient, so it neither accumulates
            # nor moves; the cost is O(table) per step (JAX has no sparse gradients).
            gradient = ops.cast(gradient, variable.dtype)
            self.assign_add(accumulator, ops.mean(ops.square(gradient), axis=1))
            # 0 / 0 is 0: an untouched row with a zero accumulator and epsilon stays put.
            denominator = ops.expand_dims(ops.sqrt(accumulator), 1) + epsilon
            self.assign_sub(variable, lr * ops.divide_no_nan(gradient, denominator))
            return
        if _in_xla_context():
            raise ValueError(
                "RowWiseAdagrad's sparse update uses tf.unique, which XLA cannot compile. "
                "Compile the model with jit_compile=False."
            )
        self._sparse_update_step(gradient, variable, accumulator, lr, epsilon)

    def _sparse_update_step(
        self, gradient: Any, variable: Any, accumulator: Any, lr: Any, epsilon: Any
    ) -> None:
        import tensorflow as tf  # noqa: PLC0415 - IndexedSlices exist on TensorFlow only

        # Duplicate ids are summed first: the row's gradient is the sum over the batch, as dense.
        rows, positions = tf.unique(gradient.indices)
        row_gradients = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, variable.dtype), positions, num_segments=tf.shape(rows)[0]
        )
        row_accumulators = tf.gather(accumulator.value, rows) + tf.reduce_mean(
            tf.square(row_gradients), axis=1
        )
        # TFOptimizer.assign / assign_sub turn IndexedSlices into scatter_update / scatter_sub.
        self.assign(accumulator, tf.IndexedSlices(row_accumulators, rows))
        step = lr * row_gradients / (tf.sqrt(row_accumulators)[:, None] + epsilon)
        self.assign_sub(variable, tf.IndexedSlices(step, rows))

    def get_config(self) -> dict[str, Any]:
        """Adagrad's config plus ``table_variables``."""
        return {**super().get_config(), "table_variables": self.table_variables}


# The optimizers `training.optimizer` may name: the one registry the schema and training read.
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "lazy_adam": LazyAdam,
    "rowwise_adagrad": RowWiseAdagrad,
    "sgd": keras.optimizers.SGD,
}
