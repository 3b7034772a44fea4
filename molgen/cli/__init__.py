"""The ``molgen`` command line."""
