"""The ``fabflow`` command line: parse, then call the layers below."""
