"""The trained models' names, in one place.

Each name is a Kedro namespace: a `pipelines/<name>/` folder runs it, `conf/base` holds its
`<name>.model` parameters, and its datasets are `<name>.model`, `<name>.metrics`, ... The
reporting pipeline, the benchmark and the tests read this tuple; the first is the reference.
"""

MODEL_NAMES: tuple[str, ...] = ("baseline", "memory_efficient")
