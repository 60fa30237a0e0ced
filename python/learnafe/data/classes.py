"""The 12 keyword-spotting classes of Google Speech Commands (v2) and their labels.

Label = index in :data:`CLASSES`.  Words of the data set that are not one of
the ten keywords map to ``"unknown"``; clips of background noise only are
``"silence"``.
"""

from __future__ import annotations

__all__ = ["CLASSES", "KEYWORDS", "UNKNOWN", "SILENCE", "UNKNOWN_LABEL", "SILENCE_LABEL",
           "UNKNOWN_WORDS", "label_of"]

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "unknown"
SILENCE = "silence"
CLASSES = KEYWORDS + (UNKNOWN, SILENCE)
UNKNOWN_LABEL = CLASSES.index(UNKNOWN)
SILENCE_LABEL = CLASSES.index(SILENCE)

# The 25 non-keyword words of Speech Commands v2 (they form its "unknown" class).
UNKNOWN_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four",
    "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three",
    "tree", "two", "visual", "wow", "zero",
)

# Folder names of the 12-class test layout.
_FOLDER_LABELS = {"_unknown_": UNKNOWN_LABEL, "_silence_": SILENCE_LABEL}


def label_of(word: str) -> int:
    """Label of a word folder: its keyword index, ``unknown`` for any other word,
    ``silence`` for ``_silence_`` (the 12-class layout uses ``_unknown_`` too)."""
    if word in _FOLDER_LABELS:
        return _FOLDER_LABELS[word]
    if word in KEYWORDS:
        return KEYWORDS.index(word)
    if word == SILENCE:
        return SILENCE_LABEL
    return UNKNOWN_LABEL
