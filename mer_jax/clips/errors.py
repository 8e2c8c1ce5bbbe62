"""The error a clip that cannot be built raises."""


class ClipError(ValueError):
    """A clip that cannot be built (missing or unreadable frames, no face, ...).

    A build skips the clip and reports the message, which names the file or
    folder at fault (docs/data.md, What goes in ``--manual_dir``).
    """
