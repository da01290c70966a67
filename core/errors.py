"""One error hierarchy for the whole project.

Every error raised on purpose by regionreasoner derives from :class:`RegionReasonerError`, and its message
names the fix.  Model-caused failures (a box out of frame, invalid answer JSON) are *not* errors: they are
recorded as :class:`regionreasoner.core.types.Problem` objects on a failed turn.  Errors are for bad user
input and broken infrastructure (missing weights, a dead database, a missing optional dependency).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DependencyMissingError",
    "DialogueNotFoundError",
    "EmptyImageError",
    "GeometryError",
    "ImageDecodeError",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "InputError",
    "ModelLoadError",
    "NotFoundError",
    "PolicyError",
    "PromptTooLongError",
    "RegionNotFoundError",
    "RegionReasonerError",
    "StorageError",
    "ToolError",
    "TurnConflictError",
    "TurnNotFoundError",
    "UnsupportedImageError",
]


class RegionReasonerError(Exception):
    """Base class of every error regionreasoner raises on purpose.

    ``hint`` repeats the fix in a form a UI can show on its own line; the message already contains it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(RegionReasonerError, ValueError):
    """A setting or argument is invalid; the message says which value to use instead."""


class InputError(RegionReasonerError, ValueError):
    """Input supplied by a user or an app is invalid (not caused by the model)."""


class ImageError(InputError):
    """An image could not be turned into a usable RGB picture."""


class ImageDecodeError(ImageError):
    """The bytes are not a decodable image (not an image at all, truncated, corrupt)."""


class EmptyImageError(ImageError):
    """The image has zero width or height."""


class ImageTooLargeError(ImageError):
    """The image has more bytes or more pixels than the configured limits (checked before reading / decoding)."""


class UnsupportedImageError(ImageError):
    """The image is valid but not supported as is (for example an animated image with several frames)."""


class PromptTooLongError(InputError):
    """The prompt (question, image tokens, template) does not fit in the model's context; raised before generation.

    ``prompt_tokens`` is how many tokens the prompt needs (a lower bound where the backend cannot count image
    tokens), ``context_tokens`` the model's context length.
    """

    def __init__(self, message: str, *, prompt_tokens: int, context_tokens: int, hint: str | None = None) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_tokens = context_tokens
        super().__init__(message, hint=hint)


class GeometryError(InputError):
    """A box, point or mask is malformed (wrong arity, not finite, inverted, outside the image)."""


class NotFoundError(RegionReasonerError, LookupError):
    """Something looked up by id does not exist."""


class DialogueNotFoundError(NotFoundError):
    """No dialogue has the given id."""


class RegionNotFoundError(NotFoundError):
    """No region of the dialogue has the given name (R1, R2, ...)."""


class TurnNotFoundError(NotFoundError):
    """No turn of the dialogue has the given index."""


class ImageNotFoundError(NotFoundError):
    """No stored image has the given content hash."""


class StorageError(RegionReasonerError):
    """The region memory could not complete an operation (database unreachable, migration missing)."""


class TurnConflictError(StorageError):
    """A turn with the same index but different content is already stored for this dialogue."""


class DependencyMissingError(RegionReasonerError, ImportError):
    """An optional dependency is not installed; the message gives the pip command that installs it."""


class ModelLoadError(RegionReasonerError):
    """Model weights or their configuration could not be found or loaded."""


class PolicyError(RegionReasonerError):
    """A policy backend failed for an infrastructure reason (server down, request rejected).

    Raised from a dialogue's ``ask()`` after the turn was recorded as failed: ``turn`` is that stored turn (its
    problems hold the ``policy_fault``), or None when the error came before any turn began.
    """

    turn: object | None = None


class ToolError(RegionReasonerError):
    """A tool failed for an infrastructure reason (missing weights, bad configuration)."""
