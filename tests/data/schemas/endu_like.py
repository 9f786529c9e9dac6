"""Shaped like Endu's submit-event variations (shared/vendors/endu-submit-event.txt)."""

from router.validation import ValidatorSpec

EVENT = {
    "property_id": {"type": "string", "required": True, "regex": r"D#[0-9]+"},
    "organization_id": {"type": "string", "required": True, "minlength": 1, "maxlength": 64},
    "timestamp": {"type": "string", "required": True, "regex": r"[0-9]{1,12}"},
    "event_type": {"type": "string", "required": True, "empty": False, "maxlength": 128},
    # Platform identity: the two come together.
    "p_user_id": {"type": "string", "regex": "[0-9]+", "dependencies": "platform_type"},
    "platform_type": {
        "type": "string",
        "allowed": ["Discord", "Telegram"],
        "dependencies": ["p_user_id"],
    },
    "c_user_id": {"type": "string", "empty": False, "excludes": "fingerprint"},
    "fingerprint": {"type": "string", "empty": False, "excludes": "c_user_id"},
    "blockchain": {
        "type": "dict",
        "schema": {
            "chain_type": {"type": "string", "required": True, "allowed": ["ethereum", "solana"]},
            "chain_account": {"type": "string", "required": True, "regex": "0x[0-9a-fA-F]*"},
        },
        "allow_unknown": False,
    },
    "event_data": {"type": "dict", "required": True, "keysrules": {"type": "string"}},
}

SPECS = [
    ValidatorSpec(
        "endu_like",
        "*",
        EVENT,
        require_any=(("p_user_id", "c_user_id", "blockchain.chain_account", "fingerprint"),),
        allow_unknown=False,
    )
]
