"""The ``itops`` command line: thin Click commands, one module per command group."""
