"""The error a clip that cannot be built raises."""


class ClipError(ValueError):
    """A clip that cannot be built (missing or unreadable frames, no face, ...).

    A build skips the clip and reports the message, which names the file or
    folder at fault, and counts it under ``fault``, a short name of the kind of
    fault (docs/data.md, Faults and what a build does with them).
    """

    def __init__(self, message: str, fault: str = "other"):
        super().__init__(message)
        self.fault = fault
