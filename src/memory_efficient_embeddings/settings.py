"""Project settings: Kedro defaults except where a comment says why."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An overlay environment such as `recipe` changes a few nested keys, not whole sections.
    "merge_strategy": {"parameters": "soft"},
}
