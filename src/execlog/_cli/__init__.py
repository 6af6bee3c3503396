"""Implementation of the ``execlog`` command line (public entry point: :mod:`execlog.cli`)."""
