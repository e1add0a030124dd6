"""The fixed train / held-out split of a suite table (its bodies, or its tasks): one name lookup for both."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuiteSplit:
    """The names of one kind of suite entry (``kind``, ``plural``), train ones first: an entry's index in
    ``names`` is the index observations carry. ``error`` is raised, naming both splits, for a name not in it."""

    kind: str
    plural: str
    train: tuple[str, ...]
    held_out: tuple[str, ...]
    error: type[Exception]

    @property
    def names(self) -> tuple[str, ...]:
        return self.train + self.held_out

    def index(self, name: str) -> int:
        if name not in self.names:
            raise self.error(f"Unknown {self.kind} {name!r}. Train {self.plural}: {', '.join(self.train)}; "
                             f"held-out {self.plural}: {', '.join(self.held_out)}.")
        return self.names.index(name)

    def select(self, text: str) -> tuple[str, ...]:
        """``"train"``, ``"held_out"``, ``"all"`` or a comma list of names: the names it means."""
        splits = {"train": self.train, "held_out": self.held_out, "all": self.names}
        if text in splits:
            return splits[text]
        chosen = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in chosen if name not in self.names]
        if not chosen or unknown:
            raise self.error(f"unknown {self.plural} {unknown or text!r}: give train, held_out, all or a comma list "
                             f"of {', '.join(self.names)}")
        return chosen
