"""Keys of a study file renamed so that one word has one meaning.

``seeds`` once meant stones per pit (``env.seeds``), training runs per trial
(``budget.seeds``) and fresh RNG seeds; each meaning has its own word now. A
study file that still uses an old key is told the new one (:mod:`tuner.config.spec`);
a spec stored on a study before the rename is read in the new keys
(:func:`tuner.config.loading.upgrade_stored_spec`). Apart, with no imports, so that
both read it without the reader of stored specs building the models.
"""

from __future__ import annotations

# old key -> (new key, what it means)
RENAMED = {
    "env.seeds": ("env.stones", "stones per pit"),
    "budget.seeds": ("budget.runs", "training runs per trial"),
    "search_space.seeds": ("search_space.stones", "stones per pit"),
}
