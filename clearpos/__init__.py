"""clearpos: a UnionPay POS ISO 8583 acquiring host, virtual terminal and help desk."""

#: the release, as in pyproject.toml (a test keeps the two equal); ``clearpos --version``
__version__ = "0.1.0"
