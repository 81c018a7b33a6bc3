"""Row-sparse ("lazy") Adam for embedding tables on the TensorFlow backend.

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
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

try:  # TF-internal helper, used only to give a clear error under XLA.
    from tensorflow.python.ops import control_flow_util as _control_flow_util
except ImportError:  # pragma: no cover - depends on TF internals
    _control_flow_util = None

__all__ = ["LazyAdam"]


def _in_xla_context() -> bool:
    """Whether the op being built is inside an XLA (``jit_compile``) cluster.

    ``tf.unique`` has a data-dependent output shape and XLA cannot compile it,
    so the sparse path is only usable with ``jit_compile=False``. This reads a
    TensorFlow-internal helper; if it moves, we assume no XLA and let TF raise.
    """
    if _control_flow_util is None:  # pragma: no cover
        return False
    graph = tf.compat.v1.get_default_graph()
    return bool(_control_flow_util.GraphOrParentsInXlaContext(graph))


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

    The sparse path uses ``tf.unique``, which XLA cannot compile: compile the
    model with ``jit_compile=False`` (Keras' ``"auto"`` already resolves to
    ``False`` on CPU-only machines and for models with ``StringLookup``).
    """

    def __init__(
        self,
        learning_rate: float | Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        *,
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
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=False,
            name=name,
            **kwargs,
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Row-sparse Adam for ``tf.IndexedSlices``, ordinary Adam otherwise."""
        if not isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        if _in_xla_context():
            raise ValueError(
                "LazyAdam's sparse update uses tf.unique, which XLA cannot "
                "compile. Compile the model with jit_compile=False."
            )
        self._sparse_update_step(gradient, variable, learning_rate)

    def _sparse_update_step(
        self, gradient: tf.IndexedSlices, variable: Any, learning_rate: Any
    ) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        # Global step, not a per-row count: same bias correction as dense Adam
        # and as TF-Addons / TF1 LazyAdam.
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(beta_1, local_step)
        beta_2_power = ops.power(beta_2, local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)

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

        # Same arithmetic as keras' Adam (m += (g - m) * (1 - beta_1)) so the
        # touched rows match dense Adam to the last bit where possible.
        m_rows = m_rows + (grad_rows - m_rows) * (1 - beta_1)
        v_rows = v_rows + (tf.square(grad_rows) - v_rows) * (1 - beta_2)

        # TFOptimizer.assign / assign_sub turn IndexedSlices values into
        # scatter_update / scatter_sub on the underlying tf.Variable.
        self.assign(m, tf.IndexedSlices(m_rows, unique_indices))
        self.assign(v, tf.IndexedSlices(v_rows, unique_indices))
        step = (m_rows * alpha) / (tf.sqrt(v_rows) + ops.cast(self.epsilon, dtype))
        self.assign_sub(variable, tf.IndexedSlices(step, unique_indices))

    def get_config(self) -> dict[str, Any]:
        """Adam's config (beta_1, beta_2, epsilon, amsgrad and base options)."""
        # Nothing beyond Adam's hyper-parameters; amsgrad is always False.
        return super().get_config()
