"""itops's own plugins, registered through the ``itops`` entry point group like any other package's.

One module per extension point (see :mod:`itops.hookspecs`): ``checks`` (the Python and YAML check
loaders and the built-in ``checks/`` folder), ``reports`` (the report formats), ``backups`` (the
backup kinds), ``aws`` (the AWS collections) and ``notifiers`` (email and webhook). Nothing here is
imported by itops itself: :func:`itops.plugins.plugin_manager` loads them from the entry points
listed in pyproject.toml.
"""
