"""The one exception every layer raises for a configuration that cannot work.

The lowest module of the package (it imports nothing of snntrain), so that the config, the
registry and every group's builders can raise it without importing each other.
"""


class ConfigError(ValueError):
    """A configuration value that cannot work (reported in one line; exit status 2)."""
