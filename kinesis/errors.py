"""AWS error shapes of the Kinesis API: ``{"__type": <type>, "message": <text>}`` with the
HTTP status AWS answers for that type (400 for client errors, 500 for internal ones)."""

from __future__ import annotations

#: error type -> HTTP status, as Kinesis answers them
STATUS: dict[str, int] = {
    "ResourceNotFoundException": 400,
    "ResourceInUseException": 400,
    "InvalidArgumentException": 400,
    "LimitExceededException": 400,
    "ExpiredIteratorException": 400,
    "ExpiredNextTokenException": 400,
    "ProvisionedThroughputExceededException": 400,
    "ValidationException": 400,
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "AccessDeniedException": 400,
    "MissingAuthenticationTokenException": 400,
    "IncompleteSignatureException": 400,
    "InvalidSignatureException": 400,
    "UnrecognizedClientException": 400,
    "InternalFailureException": 500,
    "ServiceUnavailable": 503,
}


class KinesisError(Exception):
    """An answer in AWS's error shape. ``type`` is the ``__type`` botocore maps to its
    exception class (``client.exceptions.ResourceNotFoundException``)."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message

    @property
    def status(self) -> int:
        return STATUS.get(self.type, 400)

    def body(self) -> dict[str, str]:
        return {"__type": self.type, "message": self.message}


def not_found(message: str) -> KinesisError:
    return KinesisError("ResourceNotFoundException", message)


def in_use(message: str) -> KinesisError:
    return KinesisError("ResourceInUseException", message)


def invalid(message: str) -> KinesisError:
    return KinesisError("InvalidArgumentException", message)


def limit(message: str) -> KinesisError:
    return KinesisError("LimitExceededException", message)


def validation(message: str) -> KinesisError:
    return KinesisError("ValidationException", message)


def serialization(message: str) -> KinesisError:
    return KinesisError("SerializationException", message)


def stream_not_found(name: str, account: str = "000000000000") -> KinesisError:
    return not_found(f"Stream {name} under account {account} not found.")
