"""One module per ``molgen`` subcommand: ``NAME``, ``add_parser(sub)``,
``run(args)``, and optional flags read by :mod:`molgen.cli.main`
(``RUN_DIR``, ``RESUMABLE``, ``QUIET``, ``OUTPUT``)."""
