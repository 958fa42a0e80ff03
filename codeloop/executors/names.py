"""The reserved names of the helpers that rewritten code calls: one place for both sides of them.

Layer 3 (executors). compiler.py writes these names into the code it rewrites; the session, the
budget (limits.py) and the guards put the objects behind them into the session's builtins (and the
budget's into the namespace too). Code cannot name anything that starts with RESERVED_PREFIX.
"""

from __future__ import annotations

__all__ = [
    *("RESERVED_PREFIX", "TICK", "LIVE", "LOOP", "OPS", "SELF_OK", "OWNED_IDS", "TYPE", "ID"),
    *("SELF_TYPES", "SELF_TYPE_SLOTS", "CLAIM_SELF", "PRIV", "STORE", "ATTR", "MARK", "SEAL"),
    *("RESULT", "IMPORT_STAR", "MATCH_CLASS", "MATCH_ERROR", "CLASS_TOKEN", "TOKEN", "COUNT", "COUNT_WHILE", "SOURCE"),
]

RESERVED_PREFIX = "__codeloop"
# the operation budget (limits.py)
TICK = "__codeloop_tick__"
LIVE = "__codeloop_live__"
LOOP = "__codeloop_loop__"
OPS = "__codeloop_ops__"
# the ownership check of ``self`` in methods
SELF_OK = "__codeloop_self_ok__"
OWNED_IDS = "__codeloop_owned_ids__"
TYPE = "__codeloop_type__"
ID = "__codeloop_id__"
SELF_TYPES = "__codeloop_self_types__"
SELF_TYPE_SLOTS = 64  # length of the session's list behind SELF_TYPES
CLAIM_SELF = "__codeloop_claim_self__"
# attribute guards, classes, results, imports, match
PRIV = "__codeloop_priv__"
STORE = "__codeloop_store__"
ATTR = "__codeloop_attr__"
MARK = "__codeloop_mark__"
SEAL = "__codeloop_seal__"
RESULT = "__codeloop_result__"
IMPORT_STAR = "__codeloop_import_star__"
MATCH_CLASS = "__codeloop_match_class__"
MATCH_ERROR = "__codeloop_match_error__"
CLASS_TOKEN = "__codeloop_class_token__"  # class attribute proving a class came from a class statement
TOKEN = "__codeloop_token__"
# smolagents' operation counter, in evaluate_python_code only (opcount.py)
COUNT = "__codeloop_count__"
COUNT_WHILE = "__codeloop_count_while__"
# keeps the source of a function the code defines at module level, as smolagents does (fn.__source__)
SOURCE = "__codeloop_source__"
