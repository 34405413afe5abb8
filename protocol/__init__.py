"""Kafka wire protocol, pure (no sockets, no clock, no event loop).

- ``framing``: size-prefixed frame splitting with the ``socket.request.max.bytes`` guard.
- ``headers``: request header v1/v2 and response header v0/v1 selection and parsing.
- ``codec``: request decoding / response encoding with kio's schemas (buffer lists).
- ``build``: version-agnostic construction of kio responses from plain dicts.
- ``api_registry``: api key → implemented version range → handler; feeds ApiVersions.
- ``compat``: version rules that depend on batch contents (zstd, KIP-110).
- ``errors``: Kafka error codes (kio's ``ErrorCode``).
- ``records`` / ``compression``: RecordBatch v2 and codecs (storage helper).
- ``recompress``: rebuild a batch in a topic's ``compression.type`` (KIP-390).
"""
