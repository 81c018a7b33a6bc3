"""The trained models' names, in one place.

Each name is a Kedro namespace: a `pipelines/<name>/` folder runs it, `conf/base` holds its
`<name>.model` parameters, and its datasets are `<name>.model`, `<name>.metrics`, ... The
reporting pipeline, the benchmark and the tests read this tuple; the first is the reference.
"""

MODEL_NAMES: tuple[str, ...] = ("baseline", "memory_efficient")

# Every run also trains a plain full-table model at the largest width whose serving bytes fit
# MATCHED_MODEL's (biases included), through the same fit-and-score path: the comparison then
# shows whether frequency blocks beat a uniform table of the same size.
MATCHED_MODEL = "memory_efficient"
UNIFORM_AT_SAME_BYTES = "uniform_at_same_bytes"
