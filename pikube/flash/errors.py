"""The one base class of every refusal and failure in `pikube.flash`.

Each module raises its own subclass (image, target, guard, verify, preseed),
always with a sentence a user can act on; the CLI catches `FlashError` once
and prints that sentence, never a traceback.
"""

from __future__ import annotations


class FlashError(Exception):
    """Something pikube refuses to do, or that went wrong; str() is the sentence to show."""
